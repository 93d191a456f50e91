// `choreo up`: every worker pool of the topology, each under its own supervisor process.

import ArgumentParser
import Choreo
import Dispatch
import Foundation
import Logging

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Run the whole system: the gateway and a worker pool per service.")

    @Option(help: "Gateway port.") var port = 8080

    @OptionGroup var options: TopologyOptions

    func run() throws {
        bootstrapLogging()
        let topology = try options.load()
        let logger = Logger(label: "choreo.up")
        var pids: [pid_t] = []
        for definition in topology.services where ServiceCatalog.service(for: definition) != nil {
            // A pool stops when `choreo up` dies, even by SIGKILL.
            var arguments = ["worker", definition.name, "--supervisor-pid", String(getpid())]
            if let path = options.topology { arguments += ["--topology", path] }
            let pid = try ChildProcess.spawn(ChildProcess.currentExecutable, arguments)
            logger.info("started worker pool", metadata: ["service": "\(definition.name)", "pid": "\(pid)"])
            pids.append(pid)
        }
        var gatewayArguments = ["gateway", "--port", String(port)]
        if let path = options.topology { gatewayArguments += ["--topology", path] }
        let gateway = try ChildProcess.spawn(ChildProcess.currentExecutable, gatewayArguments)
        logger.info("started gateway", metadata: ["pid": "\(gateway)", "address": "http://127.0.0.1:\(port)"])
        pids.append(gateway)
        let children = pids
        let sources = trapSignals {
            for pid in children { kill(pid, SIGTERM) }
        }
        var status: Int32 = 0
        for pid in pids {
            var code: Int32 = 0
            while waitpid(pid, &code, 0) < 0 && errno == EINTR {}
            if code != 0 { status = 1 }
        }
        _ = sources
        Foundation.exit(status)
    }
}
