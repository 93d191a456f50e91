// OTLPExport: span (and, on request, metric) export over OTLP/HTTP (protobuf) for one gateway or
// worker process, with swift-otel's tracer, batch span processor, metrics reader and exporters.
// Responsible for deciding from the standard OTEL_* variables whether to export at all, naming
// the process's service, running the exporters' background work beside a process whose main
// thread is not async, counting the spans it drops (queue full or collector unreachable) and
// flushing on shutdown. Metrics go to OTLP beside the Prometheus scrape, never instead of it. The runtime and the
// gateway only speak the swift-distributed-tracing API; this module is what a process links to
// send their spans to Jaeger, Tempo, Honeycomb or an OpenTelemetry Collector.

import Choreo
import Dispatch
import Foundation
import Logging
import Metrics
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// The process's OTLP export (spans; metrics too with `OTEL_METRICS_EXPORTER=otlp`):
/// bootstrapped once, running in the background, flushed by ``shutdown(timeout:)``.
///
/// ```swift
/// if OTLPExport.isRequested() {
///     let tracing = try OTLPExport.bootstrap(serviceName: "orders")
///     defer { tracing.shutdown(timeout: .seconds(5)) }
///     // run the worker
/// }
/// ```
public final class OTLPExport: Sendable {
    /// The variables that switch export on: an OTLP endpoint for traces.
    public static let endpointVariables = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]

    /// Whether `environment` asks for OTLP span export: an endpoint variable is set (or
    /// `OTEL_TRACES_EXPORTER=otlp`, or `CHOREO_TRACE=otlp`, which use the default
    /// `http://localhost:4318`), unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    /// Without any of them the process keeps the no-tracer fast path.
    public static func isRequested(in environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        let exporter = environment["OTEL_TRACES_EXPORTER"]?.lowercased()
        if exporter == "none" { return false }
        if exporter == "otlp" || environment["CHOREO_TRACE"] == "otlp" { return true }
        return endpointVariables.contains { !(environment[$0] ?? "").isEmpty }
    }

    /// Whether `environment` asks for metrics over OTLP too (`OTEL_METRICS_EXPORTER=otlp`, with
    /// span export on): every metric then also goes to the collector, every
    /// `OTEL_METRIC_EXPORT_INTERVAL` (60 s by default); `/metrics` stays.
    public static func metricsRequested(in environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Bool
    {
        isRequested(in: environment) && environment["OTEL_METRICS_EXPORTER"]?.lowercased() == "otlp"
    }

    /// The problems with `environment` that make export impossible here (this build has the
    /// OTLP/HTTP exporter only).
    public static func problems(in environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var problems: [String] = []
        for key in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let value = environment[key], value != "http/protobuf" {
                problems.append("\(key)=\(value) is not supported: this build exports OTLP/HTTP (http/protobuf) only")
            }
        }
        return problems
    }

    let group: ServiceGroup
    let finished = DispatchSemaphore(value: 0)
    let stopped = Mutex(false)

    /// Bootstraps the process's tracer (once per process): spans go over OTLP/HTTP to the
    /// configured endpoint. `serviceName` is the resource's `service.name` unless
    /// `OTEL_SERVICE_NAME` is set; `instanceID` becomes `service.instance.id`. Sampling
    /// (`OTEL_TRACES_SAMPLER`, `_ARG`), resource attributes (`OTEL_RESOURCE_ATTRIBUTES`), batching
    /// (`OTEL_BSP_*`) and the exporter (`OTEL_EXPORTER_OTLP_*`) follow the standard variables.
    public static func bootstrap(
        serviceName: String, instanceID: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> OTLPExport {
        if let problem = problems(in: environment).first { throw OTLPExportError(description: problem) }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.resourceAttributes["service.namespace"] = "choreo"
        if let instanceID { configuration.resourceAttributes["service.instance.id"] = instanceID }
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.diagnosticLogLevel = .warning
        configuration.diagnosticLogger = .custom(
            Logger(label: "choreo.otel") { label in ExportDiagnostics(label: label) })
        var services: [any ServiceLifecycle.Service] = [
            try OTel.bootstrap(configuration: configuration, environment: environment)
        ]
        if metricsRequested(in: environment) {
            var metrics = configuration
            metrics.traces.enabled = false
            metrics.metrics.enabled = true
            metrics.metrics.exporter = .otlp
            metrics.metrics.otlpExporter.protocol = .httpProtobuf
            let backend = try OTel.makeMetricsBackend(configuration: metrics)
            guard MetricsServer.addBackend(backend.factory) else {
                throw OTLPExportError(description: "metrics over OTLP must be set up before the first metric is made")
            }
            // Bootstrap the metrics system now: a worker without a metrics port never touches
            // the registry otherwise, and its metrics would go nowhere.
            _ = MetricsServer.sharedRegistry
            services.append(backend.service)
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: Logger(label: "choreo.otel")))
        let tracing = OTLPExport(group: group)
        tracing.start()
        return tracing
    }

    init(group: ServiceGroup) {
        self.group = group
    }

    func start() {
        let group = group
        let finished = finished
        Task.detached {
            do {
                try await group.run()
            } catch {
                Logger(label: "choreo.otel").warning("span export stopped", metadata: ["error": "\(error)"])
            }
            finished.signal()
        }
    }

    /// Exports the spans still queued and stops, waiting at most `timeout`; true when done in
    /// time. Call once at the end of the process (later calls return at once).
    @discardableResult
    public func shutdown(timeout: Duration = .seconds(5)) -> Bool {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return true }
        let group = group
        Task.detached { await group.triggerGracefulShutdown() }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        return finished.wait(timeout: .now() + seconds) == .success
    }
}

/// Export cannot start as configured.
public struct OTLPExportError: Error, CustomStringConvertible {
    /// What is wrong, and what to set instead.
    public var description: String
}
