#!/usr/bin/env python3
"""Regenerates the Kubernetes manifests of ops/k8s from streams.yml (run from anywhere):
the topology ConfigMap, the migrate Job, the gateway, a Deployment and a KEDA ScaledObject per
service. ops/validate-deploy.py (run by ops/test) fails when they drift from streams.yml."""
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "ops/k8s")
NS = "choreo"
IMAGE = "ghcr.io/choreo/choreo:latest"


def labels(app, component):
    return {"app.kubernetes.io/name": "choreo", "app.kubernetes.io/component": component, "app.kubernetes.io/instance": app}


def dump(name, docs, header):
    with open(os.path.join(OUT, name), "w") as handle:
        handle.write(header)
        handle.write(yaml.safe_dump_all(docs, sort_keys=False, width=120))


def env_from(keys):
    return [{"name": k, "valueFrom": {"secretKeyRef": {"name": "choreo-urls", "key": k}}} for k in keys]


def main():
    with open(os.path.join(ROOT, "streams.yml")) as handle:
        streams_text = handle.read()
    services = yaml.safe_load(streams_text)["services"]
    common_env = [{"name": "CHOREO_TOPOLOGY", "value": "/etc/choreo/streams.yml"}, {"name": "LOG_LEVEL", "value": "info"}]
    volume = [{"name": "topology", "configMap": {"name": "choreo-topology"}}]
    mount = [{"name": "topology", "mountPath": "/etc/choreo", "readOnly": True}]
    security = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"}}
    container_security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}

    dump("00-namespace.yaml", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}],
         "# The namespace of the reference system.\n")

    secret = {"REDIS_URL": "redis://default:CHANGE-ME@redis.choreo.svc:6379/0",
              "DATABASE_URL": "postgres://choreo:CHANGE-ME@postgres.choreo.svc:5432/choreo",
              "REDIS_URL_GATEWAY": "redis://gateway:CHANGE-ME@redis.choreo.svc:6379/0",
              "REDIS_PASSWORD": "CHANGE-ME", "CHOREO_API_KEYS": "ops:CHANGE-ME"}
    for name in services:
        secret[f"DATABASE_URL_{name.upper()}"] = f"postgres://choreo_{name}:CHANGE-ME@postgres.choreo.svc:5432/choreo"
        secret[f"REDIS_URL_{name.upper()}"] = f"redis://{name}:CHANGE-ME@redis.choreo.svc:6379/0"
    dump("01-secrets.example.yaml",
         [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "choreo-urls", "namespace": NS}, "type": "Opaque",
           "stringData": secret}],
         "# Connection URLs and keys. An EXAMPLE: create the real Secret from your secret store\n"
         "# (kubectl create secret generic choreo-urls --from-env-file=...), never commit passwords.\n"
         "# Every pod takes only the keys its role needs (see the Deployments).\n")

    dump("02-topology.yaml",
         [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "choreo-topology", "namespace": NS},
           "data": {"streams.yml": streams_text}}],
         "# streams.yml as a ConfigMap (ops/test checks it matches the repository's streams.yml).\n")

    migrate_keys = (["REDIS_URL", "DATABASE_URL"] + [f"DATABASE_URL_{n.upper()}" for n in services]
                    + [f"REDIS_URL_{n.upper()}" for n in services] + ["REDIS_URL_GATEWAY"])
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "choreo-migrate", "namespace": NS, "labels": labels("migrate", "migrate")},
           "spec": {"backoffLimit": 6, "ttlSecondsAfterFinished": 3600, "template": {"metadata": {"labels": labels("migrate", "migrate")},
                    "spec": {"restartPolicy": "OnFailure", "securityContext": security, "volumes": volume,
                             "containers": [{"name": "migrate", "image": IMAGE, "command": ["/bin/sh", "-c", "choreo migrate && choreo acl --apply"],
                                             "env": common_env + env_from(migrate_keys), "volumeMounts": mount, "securityContext": container_security,
                                             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}}]}}}}
    dump("03-migrate-job.yaml", [job],
         "# One shot per release: schemas and runtime tables, a login role per service (Postgres), an\n"
         "# ACL user per service and for the gateway (Redis). Run it before rolling out new code.\n")

    gw = labels("gateway", "gateway")
    gateway = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "choreo-gateway", "namespace": NS, "labels": gw},
               "spec": {"replicas": 2, "selector": {"matchLabels": gw},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                        "template": {"metadata": {"labels": gw, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}},
                                     "spec": {"securityContext": security, "terminationGracePeriodSeconds": 75, "volumes": volume,
                                              "containers": [{"name": "gateway", "image": IMAGE, "args": ["gateway", "--host", "0.0.0.0", "--port", "8080"],
                                                              "ports": [{"name": "http", "containerPort": 8080}],
                                                              "env": common_env + env_from(["REDIS_URL", "REDIS_URL_GATEWAY", "CHOREO_API_KEYS"]),
                                                              "volumeMounts": mount, "securityContext": container_security,
                                                              "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
                                                              "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
                                                              "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "choreo-gateway", "namespace": NS, "labels": gw},
               "spec": {"selector": gw, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "choreo-gateway", "namespace": NS},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": gw}}}
    dump("10-gateway.yaml", [gateway, service, pdb],
         "# The HTTP gateway: readiness is /readyz (Redis reachable, every routed service has a live\n"
         "# worker), liveness /healthz. The grace period covers the longest long-wait (60 s) plus drain.\n")

    workers = []
    for name in services:
        lab = labels(name, "worker")
        workers.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"choreo-{name}", "namespace": NS, "labels": lab},
                        "spec": {"replicas": 2, "selector": {"matchLabels": lab},
                                 "template": {"metadata": {"labels": lab, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9100", "prometheus.io/path": "/metrics"}},
                                              "spec": {"securityContext": security, "terminationGracePeriodSeconds": 30, "volumes": volume,
                                                       "containers": [{"name": "worker", "image": IMAGE,
                                                                       "args": ["worker", name, "--processes", "1", "--metrics-port", "9100"],
                                                                       "ports": [{"name": "metrics", "containerPort": 9100}],
                                                                       "env": common_env + env_from(["REDIS_URL", f"REDIS_URL_{name.upper()}", f"DATABASE_URL_{name.upper()}"]),
                                                                       "volumeMounts": mount, "securityContext": container_security,
                                                                       "readinessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10},
                                                                       "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10, "failureThreshold": 3, "initialDelaySeconds": 10},
                                                                       "resources": {"requests": {"cpu": "200m", "memory": "96Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}}]}}}})
    dump("20-workers.yaml", workers,
         "# One Deployment per worker pool: one worker process per pod (scale = pods, by KEDA). The\n"
         "# grace period (30 s) is longer than the policy's shutdown_timeout (20 s): SIGTERM drains the\n"
         "# batch in hand. REDIS_URL_{SERVICE} / DATABASE_URL_{SERVICE} are its least-privilege users;\n"
         "# REDIS_URL is only a fallback the runtime does not use when the service URL is set.\n")

    keda = [{"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "choreo-redis", "namespace": NS},
             "spec": {"secretTargetRef": [{"parameter": "password", "name": "choreo-urls", "key": "REDIS_PASSWORD"}]}}]
    for name, spec in services.items():
        # Redis keys carry the service's hash tag: `users.events` in streams.yml is `{users}.events`.
        def key(stream):
            service, _, kind = stream.rpartition(".")
            return stream if stream.startswith("{") or kind not in ("events", "commands", "dead") else f"{{{service}}}.{kind}"
        def partitions(stream):
            # A partitioned events stream (`events: {partitions: N}`): its partitions' keys.
            owner, _, kind = stream.rpartition(".")
            count = int((((services.get(owner) or {}).get(kind) or {}).get("partitions") or 1)) if kind in ("events", "commands") else 1
            return [key(stream).replace("}", f"#p{index}}}", 1) for index in range(count)] if count > 1 else [key(stream)]
        groups = [partitions(f"{name}.commands")] + [partitions(s) for s in (spec or {}).get("consumes") or []]
        def trigger_name(stream):
            return "".join(c if c.isalnum() else "_" for c in stream).strip("_")
        triggers = [{"type": "redis-streams", "name": trigger_name(s),
                     "metadata": {"address": "redis.choreo.svc:6379", "stream": s, "consumerGroup": name,
                                  "lagCount": "200", "activationLagCount": "1"},
                     "authenticationRef": {"name": "choreo-redis"}} for group in groups for s in group]
        advanced = {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}}}
        if any(len(group) > 1 for group in groups):
            # A partitioned stream's lag is the sum of its partitions' lags; the pool scales on
            # the largest of its streams' lags.
            terms = [" + ".join(trigger_name(s) for s in group) for group in groups]
            advanced["scalingModifiers"] = {"formula": "max([" + ", ".join(terms) + "])", "target": "200",
                                            "activationTarget": "1", "metricType": "AverageValue"}
        keda.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": f"choreo-{name}", "namespace": NS},
                     "spec": {"scaleTargetRef": {"name": f"choreo-{name}"}, "minReplicaCount": 1, "maxReplicaCount": 20, "pollingInterval": 5,
                              "cooldownPeriod": 120, "advanced": advanced, "triggers": triggers}})
    dump("30-keda.yaml", keda,
         "# KEDA autoscaling of each worker pool on its consumer groups' lag (entries not yet delivered,\n"
         "# `lagCount`: a better signal than pending, which only counts what is already being handled):\n"
         "# one redis-streams trigger per consumed stream (per partition of a partitioned one, whose\n"
         "# lags are summed by a scaling formula), 200 entries of lag per pod.\n")


if __name__ == "__main__":
    main()
