// choreo: the one executable: worker pools, migrations, the whole system, benchmarks.

import ArgumentParser
import Choreo
import ChoreoTelemetry
import Foundation
import Logging

@main
struct ChoreoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "choreo",
        abstract: "Choreographed microservices on Redis Streams and Postgres.",
        subcommands: [
            WorkerCommand.self, GatewayCommand.self, UpCommand.self, MigrateCommand.self, OpenAPICommand.self,
            BenchCommand.self, CheckCommand.self, LoadCommand.self, DLQCommand.self, StatusCommand.self,
            TraceCommand.self, ACLCommand.self, ContractsCommand.self, AsyncAPICommand.self, ScheduledCommand.self,
        ])
}

/// Options shared by every subcommand that reads the topology.
struct TopologyOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "The topology file (env CHOREO_TOPOLOGY; default: streams.yml in this folder or the nearest parent).")
    var topology: String?

    func load() throws -> Topology {
        let folder = FileManager.default.currentDirectoryPath
        guard
            let path = topology ?? ProcessInfo.processInfo.environment["CHOREO_TOPOLOGY"]
                ?? Topology.discoverFile(from: folder)
        else {
            throw ValidationError(
                "no streams.yml in \(folder) or any folder above it; pass --topology FILE or set CHOREO_TOPOLOGY")
        }
        do {
            return try Topology.load(path: path)
        } catch let error as TopologyError {
            throw ValidationError(error.description)
        }
    }
}

/// Starts logging as JSON lines on stderr (LOG_LEVEL sets the level).
func bootstrapLogging() {
    LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
}

/// Starts the process's tracer, once: OTLP/HTTP export when the OTEL_* variables ask for it
/// (``OTLPExport/isRequested(in:)``; spans named for `serviceName`), else JSON log lines when
/// CHOREO_TRACE=log, else none (the no-tracer fast path). The OTLP exporter is returned: shut
/// it down before the process exits so its last spans are sent.
func startTracing(serviceName: String) throws -> OTLPExport? {
    let environment = ProcessInfo.processInfo.environment
    guard OTLPExport.isRequested(in: environment) else {
        LogTracer.bootstrapFromEnvironment(environment)
        return nil
    }
    do {
        return try OTLPExport.bootstrap(
            serviceName: serviceName, instanceID: "\(ProcessInfo.processInfo.hostName)-\(getpid())",
            environment: environment)
    } catch {
        throw ValidationError("cannot export spans over OTLP: \(error)")
    }
}
