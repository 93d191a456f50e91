// `choreo worker <service> [--processes N]`: a supervised pool of worker processes.

import ArgumentParser
import Choreo
import ChoreoTelemetry
import Dispatch
import Foundation
import Logging

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a service's worker pool: a supervisor and N worker processes.")

    @Argument(help: "The service to run.")
    var service: String

    @Option(name: .long, help: "Worker processes (default: the service's `processes` policy).")
    var processes: Int?

    @Flag(name: .long, help: "Run one worker process in the foreground, without a supervisor.")
    var single = false

    @Option(
        name: .long,
        help: "Serve Prometheus /metrics: child N of the pool listens on this port + N (env CHOREO_METRICS_PORT).")
    var metricsPort: Int? = ProcessInfo.processInfo.environment["CHOREO_METRICS_PORT"].flatMap(Int.init)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Set by the supervisor: the child drains and exits when this process is no longer its parent.",
            visibility: .hidden))
    var supervisorPid: Int32?

    @OptionGroup var options: TopologyOptions

    func run() throws {
        bootstrapLogging()
        let topology = try options.load()
        guard let definition = topology.service(service) else {
            throw ValidationError(
                "unknown service '\(service)' (known: \(topology.services.map(\.name).joined(separator: ", ")))")
        }
        let code = try ServiceCatalog.require(definition)
        if single {
            try runSingle(code: code, topology: topology, definition: definition)
        } else {
            try supervise(definition: definition)
        }
    }

    /// One worker process: migrate, consume, drain on SIGTERM/SIGINT.
    func runSingle(code: Service, topology: Topology, definition: ServiceDefinition) throws {
        signal(SIGPIPE, SIG_IGN)
        let tracing = try startTracing(serviceName: definition.name)
        if let metricsPort {
            let server = try MetricsServer(port: metricsPort)
            Thread.detachNewThread { server.run() }
        }
        let worker = try WorkerProcess(service: code, topology: topology, logger: Logger(label: "choreo.worker"))
        try retrying { try worker.migrate() }
        try retrying { try worker.checkPartitions() }
        worker.start()
        let stop = DispatchSemaphore(value: 0)
        let sources = trapSignals { stop.signal() }
        // A child whose supervisor died (even by SIGKILL) must not run on unsupervised: a
        // restarted supervisor would start a full pool beside it.
        watchParent { stop.signal() }
        stop.wait()
        worker.requestStop()
        let drained = worker.waitUntilStopped(timeout: definition.policy.shutdownTimeout)
        _ = sources
        tracing?.shutdown(timeout: .seconds(5))
        Foundation.exit(drained ? 0 : 1)
    }

    func supervise(definition: ServiceDefinition) throws {
        let count = processes ?? definition.policy.processes
        guard count >= 1 else { throw ValidationError("--processes must be at least 1") }
        var arguments = ["worker", service, "--single", "--supervisor-pid", String(getpid())]
        if let topology = options.topology { arguments += ["--topology", topology] }
        let base = arguments
        let port = metricsPort
        let supervisor = ProcessSupervisor(
            executable: ChildProcess.currentExecutable,
            arguments: { slot in base + (port.map { ["--metrics-port", String($0 + slot)] } ?? []) }, count: count,
            shutdownTimeout: definition.policy.shutdownTimeout, logger: Logger(label: "choreo.supervisor"))
        let sources = trapSignals { supervisor.stop() }
        watchParent { supervisor.stop() }
        let status = supervisor.run()
        _ = sources
        Foundation.exit(status)
    }
}

extension WorkerCommand {
    /// With `--supervisor-pid`, calls `stop` once that process is no longer this one's parent
    /// (it died: the child was re-parented). Polled every 200 ms, so a child notices within a
    /// fraction of a second and drains its batch in hand.
    func watchParent(_ stop: @escaping @Sendable () -> Void) {
        guard let supervisorPid else { return }
        Thread.detachNewThread {
            while getppid() == supervisorPid { usleep(200_000) }
            Logger(label: "choreo.worker").error(
                "supervisor is gone; draining and exiting", metadata: ["supervisor_pid": "\(supervisorPid)"])
            stop()
        }
    }
}

/// Installs SIGTERM and SIGINT handlers that call `handler` once each time; returns the
/// sources (keep them alive).
func trapSignals(_ handler: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}

/// Retries `body` while it fails with a connection error (servers still starting), up to 60 s.
func retrying(_ body: () throws -> Void) throws {
    let deadline = Date().addingTimeInterval(60)
    while true {
        do {
            return try body()
        } catch {
            let text = "\(error)"
            guard Date() < deadline, text.contains("connect") else { throw error }
            usleep(500_000)
        }
    }
}
