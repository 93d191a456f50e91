#!/usr/bin/env python3
"""Validates Choreo's deployment files offline (no Docker engine or cluster here).

- docker-compose.yml against the Compose specification (ops/schemas/compose-spec.json), and
  against the topology: a worker pool per service, grace periods longer than shutdown_timeout,
  health checks and depends_on conditions.
- ops/Dockerfile: multi-stage, non-root user, health check, `choreo` entrypoint.
- ops/k8s/*.yaml: core objects with kubernetes-validate (strict), KEDA objects by shape; the
  topology ConfigMap equals streams.yml; a Deployment and a ScaledObject per service with a
  redis-streams lagCount trigger per consumed stream; probes, resources, grace periods.

Usage: ops/validate-deploy.py [--compose FILE] [--k8s DIR]. Exit 0 when everything holds.
"""
import argparse
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []



def stream_key(stream):
    """The Redis key of a stream named in streams.yml: `users.events` is `{users}.events`."""
    service, _, kind = stream.rpartition(".")
    if stream.startswith("{") or kind not in ("events", "commands", "dead"):
        return stream
    return "{%s}.%s" % (service, kind)

def problem(text):
    problems.append(text)


def seconds(text):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(text).strip())
    if not match:
        raise ValueError(f"not a duration: {text}")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def topology():
    with open(os.path.join(ROOT, "streams.yml")) as handle:
        data = yaml.safe_load(handle)
    defaults = data.get("defaults", {})
    services = {}
    declared = data.get("services") or {}

    def keys(stream):
        # A partitioned events stream (`events: {partitions: N}`) is N streams, one per partition.
        owner, _, kind = stream.rpartition(".")
        count = int((((declared.get(owner) or {}).get(kind) or {}).get("partitions") or 1)) if kind in ("events", "commands") else 1
        key = stream_key(stream)
        return [key.replace("}", f"#p{index}}}", 1) for index in range(count)] if count > 1 else [key]

    for name, spec in declared.items():
        spec = spec or {}
        policy = dict(defaults)
        policy.update(spec.get("policy") or {})
        services[name] = {
            "streams": keys(f"{name}.commands") + [k for s in spec.get("consumes") or [] for k in keys(s)],
            "shutdown": seconds(policy.get("shutdown_timeout", "20s")),
        }
    return services


def check_compose(path, services):
    import jsonschema

    with open(os.path.join(ROOT, "ops/schemas/compose-spec.json")) as handle:
        schema = json.load(handle)
    with open(path) as handle:
        compose = yaml.safe_load(handle)
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.path)):
        where = "/".join(str(part) for part in error.path) or "(root)"
        problem(f"compose: {where}: {error.message}")
    defined = compose.get("services") or {}
    for name, info in services.items():
        worker = defined.get(name)
        if worker is None:
            problem(f"compose: no worker pool service '{name}'")
            continue
        command = worker.get("command") or []
        if command[:2] != ["worker", name]:
            problem(f"compose: service '{name}' does not run `choreo worker {name}` (command {command})")
        grace = seconds(worker.get("stop_grace_period", "10s"))
        if grace <= info["shutdown"]:
            problem(f"compose: '{name}' stop_grace_period {grace}s is not longer than shutdown_timeout {info['shutdown']}s")
        if "healthcheck" not in worker:
            problem(f"compose: '{name}' has no healthcheck")
        if "replicas" not in (worker.get("deploy") or {}):
            problem(f"compose: '{name}' has no deploy.replicas")
    # Every Choreo process exports its spans over OTLP/HTTP to the compose file's Jaeger.
    for name in list(services) + ["gateway"]:
        environment = (defined.get(name) or {}).get("environment") or {}
        endpoint = str(environment.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
        if "http://jaeger:4318" not in endpoint:
            problem(f"compose: '{name}' does not export spans to jaeger (OTEL_EXPORTER_OTLP_ENDPOINT={endpoint!r})")
    jaeger = defined.get("jaeger") or {}
    if not str(jaeger.get("image", "")).startswith("jaegertracing/all-in-one"):
        problem("compose: no 'jaeger' service (jaegertracing/all-in-one) to receive the spans")
    elif str((jaeger.get("environment") or {}).get("COLLECTOR_OTLP_ENABLED", "")).lower() != "true":
        problem("compose: jaeger must run with COLLECTOR_OTLP_ENABLED=true")
    for name in ["redis", "postgres", "gateway", "prometheus", "grafana", "jaeger"]:
        if name not in defined:
            problem(f"compose: no '{name}' service")
    for name, service in defined.items():
        for dependency, condition in (service.get("depends_on") or {}).items() if isinstance(service.get("depends_on"), dict) else []:
            if dependency not in defined:
                problem(f"compose: '{name}' depends on unknown service '{dependency}'")
    redis_command = " ".join(str(part) for part in (defined.get("redis", {}).get("command") or []))
    if "--appendonly" not in redis_command or "--requirepass" not in redis_command:
        problem("compose: redis must run with --appendonly and --requirepass")
    for mount in ["./ops/prometheus.yml", "./ops/grafana/provisioning", "./ops/grafana/dashboards"]:
        if not os.path.exists(os.path.join(ROOT, mount)):
            problem(f"compose: mounted path {mount} does not exist")


def check_dockerfile():
    with open(os.path.join(ROOT, "ops/Dockerfile")) as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.strip().startswith("#")]
    stages = [line for line in lines if line.upper().startswith("FROM ")]
    if len(stages) < 2:
        problem("Dockerfile: not a multi-stage build")
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problem("Dockerfile: the runtime stage does not switch to a non-root user")
    if not any(line.upper().startswith("HEALTHCHECK ") for line in lines):
        problem("Dockerfile: no HEALTHCHECK")
    if not any(line.startswith("ENTRYPOINT") and "choreo" in line for line in lines):
        problem("Dockerfile: the entrypoint is not choreo")
    for package in ["libhiredis", "libpq5"]:
        if not any(package in line for line in lines):
            problem(f"Dockerfile: the runtime image does not install {package}")


def check_k8s(directory, services):
    documents = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path) as handle:
            for document in yaml.safe_load_all(handle):
                if document:
                    documents.append((os.path.basename(path), document))
    by_kind = {}
    for path, document in documents:
        by_kind.setdefault(document.get("kind"), []).append(document)
    try:
        import kubernetes_validate
    except ImportError:
        if os.environ.get("CHOREO_SKIP_K8S_SCHEMA") != "1":
            problem("k8s: kubernetes-validate is not installed (pip install kubernetes-validate)")
        kubernetes_validate = None
    if kubernetes_validate:
        version = kubernetes_validate.latest_version()
        for path, document in documents:
            if document.get("apiVersion", "").startswith("keda.sh/"):
                continue
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except Exception as error:  # ValidationError, SchemaNotFoundError, ...
                problem(f"k8s: {path}: {document.get('kind')} {document['metadata'].get('name')}: {str(error).splitlines()[0]}")
    configs = [c for c in by_kind.get("ConfigMap", []) if "streams.yml" in (c.get("data") or {})]
    with open(os.path.join(ROOT, "streams.yml")) as handle:
        streams = handle.read()
    if not configs or configs[0]["data"]["streams.yml"] != streams:
        problem("k8s: the topology ConfigMap does not match streams.yml (regenerate ops/k8s/02-topology.yaml)")
    if not by_kind.get("Job"):
        problem("k8s: no migrate Job")
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    scaled = {s["metadata"]["name"]: s for s in by_kind.get("ScaledObject", [])}
    if "choreo-gateway" not in deployments:
        problem("k8s: no gateway Deployment")
    for name, info in services.items():
        deployment = deployments.get(f"choreo-{name}")
        if deployment is None:
            problem(f"k8s: no Deployment choreo-{name}")
            continue
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        if container.get("args", [])[:2] != ["worker", name]:
            problem(f"k8s: choreo-{name} does not run `choreo worker {name}`")
        if pod.get("terminationGracePeriodSeconds", 30) <= info["shutdown"]:
            problem(f"k8s: choreo-{name} grace period is not longer than shutdown_timeout {info['shutdown']}s")
        for probe in ["readinessProbe", "livenessProbe", "resources"]:
            if probe not in container:
                problem(f"k8s: choreo-{name} has no {probe}")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problem(f"k8s: choreo-{name} may run as root")
        keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container.get("env", []) if "valueFrom" in e}
        for key in [f"DATABASE_URL_{name.upper()}", f"REDIS_URL_{name.upper()}"]:
            if key not in keys:
                problem(f"k8s: choreo-{name} does not get its own {key}")
        if "DATABASE_URL" in keys:
            problem(f"k8s: choreo-{name} gets the schema owner's DATABASE_URL")
        scaler = scaled.get(f"choreo-{name}")
        if scaler is None:
            problem(f"k8s: no KEDA ScaledObject for choreo-{name}")
            continue
        if scaler["spec"].get("scaleTargetRef", {}).get("name") != f"choreo-{name}":
            problem(f"k8s: ScaledObject choreo-{name} targets something else")
        triggers = scaler["spec"].get("triggers", [])
        covered = {t["metadata"].get("stream") for t in triggers if t.get("type") == "redis-streams"}
        for stream in info["streams"]:
            if stream not in covered:
                problem(f"k8s: ScaledObject choreo-{name} has no redis-streams trigger for {stream}")
        for trigger in triggers:
            metadata = trigger.get("metadata", {})
            if metadata.get("consumerGroup") != name or "lagCount" not in metadata:
                problem(f"k8s: ScaledObject choreo-{name}: trigger {metadata.get('stream')} needs consumerGroup {name} and lagCount")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", default=os.path.join(ROOT, "docker-compose.yml"))
    parser.add_argument("--k8s", default=os.path.join(ROOT, "ops/k8s"))
    arguments = parser.parse_args()
    services = topology()
    check_compose(arguments.compose, services)
    check_dockerfile()
    check_k8s(arguments.k8s, services)
    for text in problems:
        print(text)
    print(f"validate-deploy: {len(problems)} problem(s) in compose, Dockerfile and {arguments.k8s}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
