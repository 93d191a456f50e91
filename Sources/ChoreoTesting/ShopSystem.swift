// ShopSystem: the whole reference system for end-to-end tests: `choreo migrate` (with a login
// role per service) then `choreo up` (gateway and every worker pool as real processes) on the
// repository's streams.yml, started once per test process and stopped when it exits.

import Choreo
import Foundation
import Synchronization

/// The reference system running for the tests, started on first use.
public final class ShopSystem: Sendable {
    /// The gateway's base URL.
    public let base: String
    /// The environment the system runs with (URLs, per-service database URLs).
    public let environment: [String: String]
    /// The topology file.
    public let topologyPath: String
    /// The pid of `choreo up`, or of the gateway when the pools run separately.
    public let pid: pid_t
    /// With separate pools: the running `choreo worker` of each service.
    private let pools = Mutex<[String: pid_t]>([:])

    /// The system shared by every test of the process.
    public static let shared = Task { try await ShopSystem.start() }
    /// The system on the Redis Cluster shared by the process's cluster tests (its own database,
    /// so its checker sees its own orders only).
    public static let cluster = Task { try await ShopSystem.start(redisURL: TestCluster.url, ownDatabase: true) }

    /// The Postgres URL of `service`'s own login role.
    public func serviceDatabaseURL(_ service: String) -> String {
        environment[Topology.postgresURLVariable(service)]!
    }

    init(base: String, environment: [String: String], topologyPath: String, pid: pid_t) {
        self.base = base
        self.environment = environment
        self.topologyPath = topologyPath
        self.pid = pid
    }

    /// Starts a shop of its own: migrated, `choreo up` running, its gateway ready. With
    /// `ownDatabase`, in a fresh database of its own. With `separatePools`, the gateway and one
    /// `choreo worker <service> --processes 1` per service run as separate processes, so a
    /// test can stop and start a service (``stopPool(_:)``, ``startPool(_:)``). `settings`
    /// adds `settings:` to services of the repository's topology (e.g. orders'
    /// `saga_deadline`), written to a copy. `extraEnvironment` is set for every process (e.g.
    /// the OTEL_* variables).
    public static func start(
        redisURL: String = TestEnvironment.redisURL, ownDatabase: Bool = false, separatePools: Bool = false,
        settings: [String: [String: String]] = [:], extraEnvironment: [String: String] = [:]
    ) async throws -> ShopSystem {
        var topologyPath = TestEnvironment.repositoryRoot + "/streams.yml"
        if !settings.isEmpty {
            var text = try String(contentsOfFile: topologyPath, encoding: .utf8)
            for (service, values) in settings { text = try Self.setting(values, of: service, in: text) }
            topologyPath = TestEnvironment.workDirectory + "/\(TestEnvironment.uniqueName("streams")).yml"
            try text.write(toFile: topologyPath, atomically: true, encoding: .utf8)
        }
        var environment = ProcessInfo.processInfo.environment
        let databaseURL = ownDatabase ? try TestEnvironment.scratchDatabase().url : TestEnvironment.databaseURL
        environment["REDIS_URL"] = redisURL
        environment["DATABASE_URL"] = databaseURL
        environment["LOG_LEVEL"] = "warning"
        environment["CHOREO_API_KEYS"] = nil
        environment["CHOREO_API_KEYS_FILE"] = nil
        environment.merge(extraEnvironment) { _, extra in extra }
        let prefix = TestEnvironment.uniqueName("shop")
        guard var components = URLComponents(string: databaseURL) else {
            throw TimeoutError(what: "a parsable CHOREO_TEST_DATABASE_URL", seconds: 0, lastError: nil)
        }
        for service in ["users", "orders", "inventory", "payments"] {
            components.user = "\(prefix)_\(service)"
            components.password = TestEnvironment.uniqueName("pw")
            environment[Topology.postgresURLVariable(service)] = components.string!
        }
        let migrate = try ChildProcess.spawn(
            TestEnvironment.choreoBinary, ["migrate", "--topology", topologyPath], environment: environment)
        guard try await waitForExit(migrate, timeout: 120) == 0 else {
            throw TimeoutError(what: "choreo migrate to succeed", seconds: 120, lastError: nil)
        }
        let port = try freePort()
        let arguments =
            separatePools
            ? ["gateway", "--port", String(port), "--topology", topologyPath]
            : ["up", "--port", String(port), "--topology", topologyPath]
        let pid = try ChildProcess.spawn(TestEnvironment.choreoBinary, arguments, environment: environment)
        ChildReaper.register(pid)
        let system = ShopSystem(
            base: "http://127.0.0.1:\(port)", environment: environment, topologyPath: topologyPath, pid: pid)
        if separatePools {
            for service in ["users", "orders", "inventory", "payments"] { try system.startPool(service) }
        }
        try await eventually("the shop's gateway to be ready", timeout: 90) {
            guard let response = try? httpGet(port: port, path: "/readyz") else { return false }
            return response.hasPrefix("HTTP/1.1 200")
        }
        return system
    }
}

extension ShopSystem {
    /// `text` (a topology) with `values` in `service`'s `settings:` (replacing the same keys).
    static func setting(_ values: [String: String], of service: String, in text: String) throws -> String {
        var lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "  \(service):") else {
            throw TimeoutError(what: "service \(service) in streams.yml", seconds: 0, lastError: nil)
        }
        // The service's block: its indented lines up to the next service or section.
        var end = start + 1
        while end < lines.count, lines[end].hasPrefix("    ") || lines[end].isEmpty { end += 1 }
        let block = start + 1..<end
        let settings = lines[block].firstIndex(of: "    settings:")
        var kept = Array(lines[block])
        kept.removeAll { line in
            values.keys.contains { line.hasPrefix("      \($0):") }
        }
        let added = values.sorted { $0.key < $1.key }.map { "      \($0.key): \($0.value)" }
        if settings != nil, let at = kept.firstIndex(of: "    settings:") {
            kept.insert(contentsOf: added, at: at + 1)
        } else {
            kept.append(contentsOf: ["    settings:"] + added)
        }
        lines.replaceSubrange(block, with: kept)
        return lines.joined(separator: "\n")
    }

    /// Starts `choreo worker <service> --processes 1` (a system started with separate pools);
    /// nothing if it runs already.
    public func startPool(_ service: String) throws {
        guard pools.withLock({ $0[service] }) == nil else { return }
        let pid = try ChildProcess.spawn(
            TestEnvironment.choreoBinary, ["worker", service, "--processes", "1", "--topology", topologyPath],
            environment: environment)
        ChildReaper.register(pid)
        pools.withLock { $0[service] = pid }
    }

    /// Stops `service`'s pool (SIGTERM: it drains) and waits for it to exit.
    public func stopPool(_ service: String) async throws {
        guard let pid = pools.withLock({ $0.removeValue(forKey: service) }) else { return }
        kill(pid, SIGTERM)
        _ = try await waitForExit(pid, timeout: 30)
    }

    /// Stops the gateway and every pool.
    public func stop() async throws {
        for service in pools.withLock({ Array($0.keys) }) { try await stopPool(service) }
        kill(pid, SIGTERM)
        _ = try await waitForExit(pid, timeout: 30)
    }
}

/// Processes started by tests and stopped (SIGTERM, then SIGKILL) when the test process exits.
public enum ChildReaper {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pids: [pid_t] = []

    /// Stops `pid` when the test process exits.
    public static func register(_ pid: pid_t) {
        lock.withLock {
            if pids.isEmpty { atexit { ChildReaper.stopAll() } }
            pids.append(pid)
        }
    }

    static func stopAll() {
        let all = lock.withLock { pids }
        for pid in all { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        for pid in all {
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0, Date() < deadline { usleep(20_000) }
            kill(pid, SIGKILL)
        }
    }
}
