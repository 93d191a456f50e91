// TestCluster: the Redis Cluster (3 masters, 3 replicas) that ops/test started, with the means
// to stop and restart its nodes and to wait for a failover.

import Choreo
import Foundation
import Redis

/// The Redis Cluster of the test run: `CHOREO_TEST_REDIS_CLUSTER_URL` (a seed node) and
/// `CHOREO_TEST_REDIS_CLUSTER_DIR` (one folder `node-PORT` per node, each with a `start`
/// script that restarts the node on its port and data).
public enum TestCluster {
    /// The URL of one node of the cluster.
    public static var url: String { TestEnvironment.variable("CHOREO_TEST_REDIS_CLUSTER_URL") }
    /// The folder holding the nodes' folders.
    public static var directory: String { TestEnvironment.variable("CHOREO_TEST_REDIS_CLUSTER_DIR") }

    /// The URL of every node, for tests that must survive the loss of the seed.
    public static var ports: [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .compactMap { $0.hasPrefix("node-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    /// A URL naming the node on `port`.
    public static func url(port: Int) -> String { "redis://127.0.0.1:\(port)/0" }

    /// Kills the node on `port` with SIGKILL (no shutdown, no save).
    public static func kill(port: Int) throws {
        let pidFile = "\(directory)/node-\(port)/redis.pid"
        let text = try String(contentsOfFile: pidFile, encoding: .utf8)
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        _ = Foundation.kill(pid, SIGKILL)
        try? FileManager.default.removeItem(atPath: pidFile)
    }

    /// Starts the node on `port` again (it rejoins the cluster from its nodes.conf, as a replica
    /// when its replica took over) and waits until it answers.
    public static func restart(port: Int) async throws {
        let pid = try ChildProcess.spawn("/bin/sh", ["\(directory)/node-\(port)/start"])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try await eventually("node \(port) answers", timeout: 10) { canConnect(port: port) }
    }

    /// The port of the master serving `key`.
    public static func masterPort(ofKey key: String) throws -> Int {
        let redis = try RedisConnection(url: url(port: try anyLivePort()))
        let endpoint = try redis.endpoint(ofKey: key)
        return Int(endpoint.split(separator: ":").last ?? "") ?? 0
    }

    /// A node that answers.
    public static func anyLivePort() throws -> Int {
        guard let port = ports.first(where: canConnect) else {
            throw TimeoutError(what: "a live node of the Redis Cluster", seconds: 0, lastError: nil)
        }
        return port
    }

    /// Waits until every live node reports `cluster_state:ok` and every slot has a live
    /// master (after a failover, or after a restarted node rejoined).
    public static func waitUntilHealthy(timeout: Double = 30) async throws {
        try await eventually("the Redis Cluster is healthy", timeout: timeout) {
            let live = ports.filter(canConnect)
            guard !live.isEmpty else { return false }
            for port in live {
                guard let redis = try? RedisConnection(url: url(port: port)),
                    let info = try? redis.onEveryNode(["CLUSTER", "INFO"]), !info.isEmpty,
                    info.allSatisfy({ ($0.reply.string ?? "").contains("cluster_state:ok") }),
                    let map = redis.clusterMap, map.coversEverySlot,
                    map.masters.allSatisfy({ canConnect(port: Int($0.split(separator: ":").last ?? "") ?? 0) })
                else { return false }
            }
            return true
        }
    }
}
