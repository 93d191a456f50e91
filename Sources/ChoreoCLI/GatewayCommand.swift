// `choreo gateway`: the HTTP gateway, with graceful shutdown on SIGTERM/SIGINT.

import ArgumentParser
import Choreo
import ChoreoTelemetry
import Console
import Foundation
import Gateway
import Hummingbird
import Logging
import Operations
import Shop

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway", abstract: "Run the HTTP gateway: submit, poll/long-wait, queries, health, metrics.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(help: "Largest request body in bytes.") var maxBody = 64 * 1024
    @Option(help: "Longest long-wait in seconds.") var maxWait = 60.0
    @Option(help: "Close a keep-alive connection idle this many seconds (a parked long-wait is not idle).")
    var idleTimeout = 65.0
    @Flag(
        help:
            "Accept commands for services without a live worker (queued until one starts) instead of answering 503."
    ) var queueWithoutWorkers = false
    @Flag(
        help:
            "Accept commands even when a stream of the service holds a backlog over its maxlen (default: 503 with Retry-After)."
    ) var noBackpressure = false
    @Flag(
        help:
            "Send every submission through the router instead of answering valid ones on the event loop (same responses, slower)."
    ) var noFastSubmit = false
    @Flag(
        help:
            "Park long-waits (GET /v1/commands/{id}?wait=N) in the router instead of on the connection (same responses, more memory per waiter)."
    ) var noFastWait = false
    @Option(help: "Per-API-key rate limit shared by all gateways, e.g. 100/s,burst=50 (env CHOREO_RATE_LIMIT).")
    var rateLimit: String? = ProcessInfo.processInfo.environment["CHOREO_RATE_LIMIT"]

    @OptionGroup var options: TopologyOptions

    func run() async throws {
        bootstrapLogging()
        signal(SIGPIPE, SIG_IGN)
        let tracing = try startTracing(serviceName: "gateway")
        defer { tracing?.shutdown(timeout: .seconds(5)) }
        var topology = try options.load()
        let operatorRedisURL = topology.redisURL
        // The gateway's own Redis user (least privilege, see `choreo acl`), if configured.
        if let url = ProcessInfo.processInfo.environment[RedisACL.gatewayURLVariable], !url.isEmpty {
            topology.redisURL = url
        }
        var configuration = GatewayConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.maxBodyBytes = maxBody
        configuration.maxWait = maxWait
        configuration.idleTimeout = idleTimeout
        configuration.requireLiveWorker = !queueWithoutWorkers
        configuration.fastSubmit = !noFastSubmit
        configuration.fastLongWait = !noFastWait
        configuration.backpressure = !noBackpressure
        if let problem = configuration.problems().first { throw ValidationError(problem) }
        do {
            configuration.keys = try APIKeyring.fromEnvironment()
        } catch {
            throw ValidationError("\(error)")
        }
        if let rateLimit {
            guard let limit = RateLimit(spec: rateLimit) else {
                throw ValidationError("--rate-limit must look like 100/s or 100/s,burst=50 (got '\(rateLimit)')")
            }
            configuration.rateLimit = limit
        }
        let logger = Logger(label: "choreo.gateway")
        if !configuration.keys.isEnabled {
            logger.warning("no API keys configured (CHOREO_API_KEYS / CHOREO_API_KEYS_FILE): authentication is OFF")
        }
        let gateway = try Gateway(
            topology: topology, configuration: configuration, logger: logger,
            extensions: (ShopGraphQL.supports(topology) ? [ShopGraphQL()] : []) + [
                AsyncAPIRoute(AsyncAPIDocument.yaml(for: topology, code: ServiceCatalog.service(for:))),
                try Console(
                    topology: topology, redisURL: operatorRedisURL, postgresURL: topology.postgresURL,
                    handles: { [topology] service, type in
                        topology.service(service).flatMap(ServiceCatalog.service(for:))?.handler(for: type) != nil
                    }),
            ])
        gateway.start()
        // On SIGTERM/SIGINT answer every long-waiter at once (202 with the current status), so
        // the server's drain does not wait out their waits.
        let sources = trapSignals { gateway.stop() }
        defer { gateway.stop() }
        try await gateway.application().runService()
        _ = sources
    }
}
