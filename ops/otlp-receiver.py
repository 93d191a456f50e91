#!/usr/bin/env python3
"""ops/otlp-receiver.py: a minimal OTLP/HTTP trace receiver, for tests and for looking at spans
without a Jaeger or Collector at hand.

    python3 ops/otlp-receiver.py --port 4318 --out spans.jsonl

Accepts POST /v1/traces (protobuf, optionally gzip), decodes each ExportTraceServiceRequest with
the `opentelemetry-proto` package (PyPI) and appends one JSON line per span to --out: trace_id,
span_id, parent_span_id (hex), name, kind, service (the resource's service.name), resource and
span attributes, start and end (unix ns). --port 0 picks a free port; --port-file receives it.
Answers 200 with an empty ExportTraceServiceResponse; anything else is 404 or 400. POST
/v1/metrics is decoded too: with --metrics-out, one JSON line per metric (name, kind, service,
data points), else accepted and dropped. With
--fail-first N the first N requests are answered 503 (a collector that is down, then back).
With --discard requests are answered without decoding (a collector elsewhere, for benchmarks:
the receiver then costs this machine almost nothing) and only counted, on --out at exit.
"""
import argparse
import gzip
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind)


def attributes(pairs):
    return {kv.key: value(kv.value) for kv in pairs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--port-file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--discard", action="store_true")
    parser.add_argument("--metrics-out")
    arguments = parser.parse_args()
    lock = threading.Lock()
    state = {"failures_left": arguments.fail_first, "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", content_type="application/x-protobuf"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def decode(self, body, message):
            """`message` parsed from the (maybe gzipped) body, or None after answering 400: a
            malformed request is the sender's bug, and the answer says so."""
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                message.ParseFromString(body)
                return message
            except Exception as error:
                name = type(message).__name__
                self.reply(400, f"cannot decode {name}: {error}".encode(), "text/plain")
                return None

        def metrics(self, body):
            request = self.decode(body, metrics_service_pb2.ExportMetricsServiceRequest())
            if request is None:
                return
            lines = []
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        kind = metric.WhichOneof("data")
                        points = len(getattr(metric, kind).data_points) if kind else 0
                        lines.append(json.dumps({"metric": metric.name, "kind": kind, "points": points,
                                                 "service": resource.get("service.name")}, sort_keys=True))
            if arguments.metrics_out:
                with lock, open(arguments.metrics_out, "a") as out:
                    for line in lines:
                        out.write(line + "\n")
            self.reply(200, metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString())

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path == "/v1/metrics":
                return self.metrics(body)
            if self.path != "/v1/traces":
                return self.reply(404, b"not found", "text/plain")
            with lock:
                state["requests"] += 1
                if state["failures_left"] > 0:
                    state["failures_left"] -= 1
                    return self.reply(503, b"unavailable", "text/plain")
            if arguments.discard:
                with lock:
                    state["bytes"] = state.get("bytes", 0) + len(body)
                return self.reply(200, b"")
            request = self.decode(body, trace_service_pb2.ExportTraceServiceRequest())
            if request is None:
                return
            lines = []
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        lines.append(json.dumps({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": KINDS.get(span.kind, str(span.kind)),
                            "service": resource.get("service.name"),
                            "resource": resource,
                            "attributes": attributes(span.attributes),
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "status": span.status.code,
                        }, sort_keys=True))
            with lock, open(arguments.out, "a") as out:
                for line in lines:
                    out.write(line + "\n")
            self.reply(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    server = ThreadingHTTPServer((arguments.host, arguments.port), Handler)
    if arguments.port_file:
        with open(arguments.port_file + ".tmp", "w") as out:
            out.write(str(server.server_address[1]))
        import os
        os.replace(arguments.port_file + ".tmp", arguments.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        if arguments.discard:
            with open(arguments.out, "a") as out:
                out.write(f"{state['requests']} requests, {state.get('bytes', 0)} bytes\n")


if __name__ == "__main__":
    main()
