// RedisConnection: the blocking Redis connection the runtime and the gateway use. On a
// standalone server it is one RedisNode; on a Redis Cluster (detected when connecting, with
// CLUSTER SLOTS) it routes every command by its key's hash slot over RedisCluster. Same API.

/// A blocking connection to Redis: a standalone server, or any node of a Redis Cluster.
///
/// **Cluster mode.** When the server named by the URL is a cluster node, the connection loads
/// the slot map and sends each command to the master serving its key's hash slot (hash tags
/// respected), following `MOVED` (the map is patched and then reloaded) and `ASK` (`ASKING`
/// first), retrying `TRYAGAIN`, and reloading the map after a lost node (a failover). Pipelines
/// are split by node: every node is written before any is read, and the replies come back in
/// the caller's order. A command or `MULTI` ... `EXEC` block whose keys span several slots is
/// refused before sending with ``RedisError/crossSlot(command:keys:)``. Ordering holds within
/// one node only: commands that must run in order across slots go in separate calls (see
/// ``writeThen(_:then:thenRead:)``).
///
/// **Threading.** Not thread-safe: exactly one owner uses it at a time (a worker thread, or the
/// serial queue of a ``RedisClient``). Its calls block the calling thread, so never call it from
/// a SwiftNIO event loop or Swift's cooperative pool; from async code use ``RedisClient``.
///
/// **Reconnects.** When a server drops the connection, the command in flight fails with
/// ``RedisError/connectionLost(endpoint:reason:)`` (its effect is unknown, so it is never
/// silently repeated) and the next call reconnects, re-authenticating and re-selecting the
/// database; attempts while the server stays down are spaced by an exponential backoff.
public final class RedisConnection: @unchecked Sendable {
    /// The settings this connection was opened with (for a cluster: its seed node).
    public let configuration: RedisConfiguration

    private enum Mode {
        case standalone(RedisNode)
        case cluster(RedisCluster)
    }
    private let mode: Mode

    /// Connects to the server (or the cluster node) of `configuration` and finds out which it
    /// is; throws ``RedisError`` naming the endpoint when it cannot.
    public init(configuration: RedisConfiguration) throws {
        self.configuration = configuration
        let seed = try Self.firstAnswering(configuration)
        let reply: RedisReply
        do {
            reply = try seed.command(["CLUSTER", "SLOTS"])
        } catch let error as RedisError where Self.meansStandalone(error) {
            mode = .standalone(seed)
            return
        }
        let map = try RedisClusterMap(clusterSlots: reply, defaultHost: configuration.host)
        guard !map.shards.isEmpty else {
            throw RedisError.connectionFailed(
                endpoint: configuration.endpoint, reason: "the Redis Cluster node serves no slots yet (CLUSTERDOWN)")
        }
        mode = .cluster(RedisCluster(seed: seed, map: map, origin: configuration))
    }

    /// A connection to the URL's server or, when it does not answer, to the first that does of
    /// the URL's other cluster nodes and the nodes this process last saw in that cluster (the
    /// named node may have died in a failover).
    private static func firstAnswering(_ configuration: RedisConfiguration) throws -> RedisNode {
        do {
            return try RedisNode(configuration: configuration)
        } catch let error as RedisError where error.isConnectionError {
            var tried: Set<String> = [configuration.endpoint]
            for endpoint in configuration.otherSeeds + RedisCluster.knownNodes(of: configuration)
            where tried.insert(endpoint).inserted {
                guard let settings = configuration.at(endpoint) else { continue }
                if let node = try? RedisNode(configuration: settings) { return node }
            }
            throw error
        }
    }

    /// Parses `url` (`redis://[user:password@]host:port[/db]`) and connects.
    public convenience init(url: String) throws {
        try self.init(configuration: RedisConfiguration(url: url))
    }

    /// `CLUSTER SLOTS` refused: the server runs without cluster support (or the ACL user may
    /// not ask, which Choreo's users always may: then it is taken as standalone).
    private static func meansStandalone(_ error: RedisError) -> Bool {
        guard case .server(_, let message) = error else { return false }
        return message.contains("cluster support disabled") || error.serverCode == "NOPERM"
            || error.serverCode == "ERR" && message.lowercased().contains("unknown command")
    }

    /// Whether the server is a Redis Cluster.
    public var isCluster: Bool {
        if case .cluster = mode { return true }
        return false
    }

    /// The cluster's slot map as last loaded (nil on a standalone server).
    public var clusterMap: RedisClusterMap? {
        if case .cluster(let cluster) = mode { return cluster.map }
        return nil
    }

    /// Reloads the cluster's slot map now (nothing on a standalone server).
    public func refreshClusterMap() throws {
        if case .cluster(let cluster) = mode { try cluster.refresh() }
    }

    /// The endpoint (`host:port`) of the server holding `key`: the master of its slot on a
    /// cluster, the server itself otherwise.
    public func endpoint(ofKey key: String) throws -> String {
        switch mode {
        case .standalone(let node): return node.configuration.endpoint
        case .cluster(let cluster): return try cluster.master(ofSlot: RedisSlot.of(key), key: key)
        }
    }

    /// Whether a connection is currently open (it may still turn out to be closed by the peer).
    public var isConnected: Bool {
        switch mode {
        case .standalone(let node): return node.isConnected
        case .cluster(let cluster): return cluster.isConnected
        }
    }

    /// Closes the connection(s). The next command reconnects.
    public func close() {
        switch mode {
        case .standalone(let node): node.close()
        case .cluster(let cluster): cluster.close()
        }
    }

    // MARK: Commands

    /// Sends one command and returns its reply. Error replies are thrown as
    /// ``RedisError/server(command:message:)``.
    ///
    /// - Parameter blockingFor: extra seconds the reply may take (for `BLOCK` arguments).
    @discardableResult
    public func command(_ arguments: [String], blockingFor: Double = 0) throws -> RedisReply {
        switch mode {
        case .standalone(let node):
            return try node.command(arguments, blockingFor: blockingFor)
        case .cluster(let cluster):
            return try cluster.routed(RedisSlot.keys(of: arguments), command: arguments.first ?? "") {
                try $0.command(arguments, blockingFor: blockingFor)
            }
        }
    }

    /// Sends one command whose arguments are raw bytes (binary-safe keys and values). On a
    /// cluster, the key (the first argument) is routed as UTF-8 text.
    @discardableResult
    public func command(bytes arguments: [[UInt8]]) throws -> RedisReply {
        switch mode {
        case .standalone(let node):
            return try node.command(bytes: arguments)
        case .cluster(let cluster):
            let keys = arguments.count > 1 ? [String(decoding: arguments[1], as: UTF8.self)] : []
            return try cluster.routed(keys, command: "") { try $0.command(bytes: arguments) }
        }
    }

    /// Sends many commands before reading any reply, then returns the replies in order.
    /// Error replies are returned in place (as ``RedisReply/error(_:)``), not thrown, so each
    /// command's outcome can be inspected. Large pipelines are sent in chunks of 512 to keep
    /// the client's buffers bounded.
    public func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        switch mode {
        case .standalone(let node): return try node.pipeline(commands)
        case .cluster(let cluster): return try cluster.pipeline(commands)
        }
    }

    /// Sends a pipeline whose replies are not needed, only checked: throws the first error
    /// reply (as ``RedisError/server(command:message:)``; for `EXEC`, the first failed command
    /// of the transaction) after reading every reply, so the connection stays in step.
    public func pipelineCheckingErrors(_ commands: [[String]]) throws {
        switch mode {
        case .standalone(let node):
            try node.pipelineCheckingErrors(commands)
        case .cluster(let cluster):
            if let keys = Self.oneSlotKeys(commands) {
                // One slot (the usual settlement: its acknowledgement): one node, no reply copies.
                return try cluster.routed(keys, command: "pipeline") { try $0.pipelineCheckingErrors(commands) }
            }
            let replies = try cluster.pipeline(commands)
            if let error = Self.firstError(replies, commands: commands[...]) { throw error }
        }
    }

    /// The keys of `commands` when they all share one slot (at least one key), else nil.
    static func oneSlotKeys(_ commands: [[String]]) -> [String]? {
        var keys: [String] = []
        var slot = -1
        for command in commands {
            for key in RedisSlot.keys(of: command) {
                let keySlot = RedisSlot.of(key)
                if slot < 0 { slot = keySlot } else if keySlot != slot { return nil }
                if keys.isEmpty { keys.append(key) }
            }
        }
        return keys.isEmpty ? nil : keys
    }

    /// The first error among `replies` (an error reply, or a failed command inside EXEC).
    private static func firstError(_ replies: [RedisReply], commands: ArraySlice<[String]>) -> RedisError? {
        for (reply, command) in zip(replies, commands) {
            let name = RedisSlot.upper(command.first ?? "")
            if case .error(let message) = reply { return .server(command: name, message: message) }
            if name == "EXEC", case .array(let results) = reply {
                for case .error(let message) in results { return .server(command: "EXEC", message: message) }
            }
        }
        return nil
    }

    /// Sends `commands` and then the stream read `read` (an XREADGROUP without BLOCK) in one
    /// round trip (per node): the replies of `commands` are only checked (the first error is
    /// thrown after every reply was read), the read's reply is parsed into stream batches.
    public func pipeline(_ commands: [[String]], thenRead read: [String]) throws -> [StreamBatch] {
        switch mode {
        case .standalone(let node):
            return try node.pipeline(commands, thenRead: read)
        case .cluster(let cluster):
            if let keys = Self.oneSlotKeys(commands + [read]) {
                // The acknowledgement and the next read of one stream: one node, and the read's
                // reply parsed straight into batches.
                return try cluster.routed(keys, command: "XREADGROUP") { try $0.pipeline(commands, thenRead: read) }
            }
            let replies = try cluster.pipeline(commands + [read])
            if let error = Self.firstError(replies, commands: commands[...]) { throw error }
            return try StreamBatch.batches(from: replies[commands.count], command: read.first ?? "")
        }
    }

    /// Runs `writes`, and `after` only once every write succeeded, each step atomic
    /// (`MULTI` ... `EXEC`) per hash slot; with `read` (an XREADGROUP without BLOCK), reads the
    /// next stream batch in the last round trip. The way to publish and then acknowledge: no
    /// acknowledgement without what replaces it.
    ///
    /// On a standalone server all of it is one transaction in one round trip (stronger: all or
    /// nothing). On a cluster the writes go to their slots in parallel (one transaction per
    /// slot), then `after` in a second round trip; a crash in between leaves the writes done and
    /// the acknowledgement not, so the entry is delivered again: a duplicate, never a loss.
    @discardableResult
    public func writeThen(_ writes: [[String]], then after: [[String]], thenRead read: [String]? = nil) throws
        -> [StreamBatch]
    {
        switch mode {
        case .standalone(let node):
            let all = writes + after
            let commands = all.count > 1 ? [["MULTI"]] + all + [["EXEC"]] : all
            if let read { return try node.pipeline(commands, thenRead: read) }
            if !commands.isEmpty { try node.pipelineCheckingErrors(commands) }
            return []
        case .cluster:
            if !writes.isEmpty { try pipelineCheckingErrors(Self.atomicPerSlot(writes)) }
            let tail = Self.atomicPerSlot(after)
            if let read { return try pipeline(tail, thenRead: read) }
            if !tail.isEmpty { try pipelineCheckingErrors(tail) }
            return []
        }
    }

    /// Waits until `durability`'s replicas acknowledged every write this connection sent to
    /// the servers holding `keys` (`WAIT`, on each master involved); nothing with
    /// ``RedisDurability/acknowledged``. Throws ``RedisError/notReplicated(endpoint:acknowledged:required:)``
    /// when fewer acknowledged in time (an outage: retry the writes).
    public func waitForReplicas(_ durability: RedisDurability, keys: [String]) throws {
        guard durability.waits, !keys.isEmpty else { return }
        let milliseconds = max(1, Int(durability.timeout * 1000))
        switch mode {
        case .standalone(let node):
            let acknowledged = try node.command(["WAIT", String(durability.replicas), String(milliseconds)]).int ?? 0
            if acknowledged < durability.replicas {
                throw RedisError.notReplicated(
                    endpoint: node.configuration.endpoint, acknowledged: acknowledged, required: durability.replicas)
            }
        case .cluster(let cluster):
            try cluster.waitForReplicas(durability.replicas, timeoutMilliseconds: milliseconds, keys: keys)
        }
    }

    /// `commands` grouped by hash slot (order kept within a slot), each group of several as
    /// one `MULTI` ... `EXEC`.
    static func atomicPerSlot(_ commands: [[String]]) -> [[String]] {
        var order: [Int] = []
        var groups: [Int: [[String]]] = [:]
        for command in commands {
            let slot = RedisSlot.keys(of: command).first.map(RedisSlot.of) ?? -1
            if groups[slot] == nil { order.append(slot) }
            groups[slot, default: []].append(command)
        }
        return order.flatMap { slot -> [[String]] in
            let group = groups[slot]!
            return group.count > 1 && slot >= 0 ? [["MULTI"]] + group + [["EXEC"]] : group
        }
    }

    /// The slot a transaction of `commands` runs in, for merging transactions: nil on a
    /// standalone server (any transactions may merge), the slot of the first key on a cluster
    /// (-1 without keys).
    public func mergeSlot(of commands: [[String]]) -> Int? {
        guard isCluster else { return nil }
        for command in commands {
            if let key = RedisSlot.keys(of: command).first { return RedisSlot.of(key) }
        }
        return -1
    }

    /// Loads a Lua script where `keys` live (on a cluster: the master of their slot, or every
    /// master without keys) and returns its SHA1 digest.
    public func loadScript(_ source: String, keys: [String]) throws -> String {
        let reply: RedisReply
        switch mode {
        case .standalone(let node):
            reply = try node.command(["SCRIPT", "LOAD", source])
        case .cluster(let cluster):
            if keys.isEmpty {
                guard let first = try cluster.onEveryNode(["SCRIPT", "LOAD", source], replicas: false).first else {
                    throw RedisError.slotNotCovered(slot: 0, key: "")
                }
                reply = first.reply
            } else {
                reply = try cluster.routed(keys, command: "EVALSHA") { try $0.command(["SCRIPT", "LOAD", source]) }
            }
        }
        guard let digest = reply.string else {
            throw RedisError.unexpectedReply(command: "SCRIPT LOAD", reply: reply.description)
        }
        return digest
    }

    /// Runs `arguments` on every server: the one standalone server, or every master of the
    /// cluster (and with `replicas`, every replica too: for `ACL SETUSER`, which each node keeps
    /// for itself). Returns each server's reply with its endpoint; error replies are thrown.
    public func onEveryNode(_ arguments: [String], replicas: Bool = false) throws -> [(
        endpoint: String, reply: RedisReply
    )] {
        switch mode {
        case .standalone(let node):
            return [(node.configuration.endpoint, try node.command(arguments))]
        case .cluster(let cluster):
            return try cluster.onEveryNode(arguments, replicas: replicas)
        }
    }

    /// Sends one command whose reply is read straight into stream batches (XREADGROUP/XREAD),
    /// without an intermediate ``RedisReply`` tree.
    func streamCommand(_ arguments: [String], blockingFor: Double) throws -> [StreamBatch] {
        switch mode {
        case .standalone(let node):
            return try node.streamCommand(arguments, blockingFor: blockingFor)
        case .cluster(let cluster):
            return try cluster.routed(RedisSlot.keys(of: arguments), command: arguments.first ?? "") {
                try $0.streamCommand(arguments, blockingFor: blockingFor)
            }
        }
    }
}
