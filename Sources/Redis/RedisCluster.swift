// RedisCluster: routing over the nodes of a Redis Cluster: a connection per node (opened on
// first use), the slot map (loaded with CLUSTER SLOTS, patched by MOVED, reloaded after a
// redirection or a lost node), ASK and TRYAGAIN during slot migrations, and pipelines split by
// node (every node written before any is read) with replies returned in the caller's order.

import Foundation
import Synchronization

/// The cluster side of a ``RedisConnection``. Not thread-safe, like the connection that owns it.
final class RedisCluster {
    let configuration: RedisConfiguration
    private(set) var map: RedisClusterMap
    private var nodes: [String: RedisNode] = [:]
    /// Endpoints to ask for the map when the known nodes do not answer.
    private let seeds: [String]
    /// The map should be reloaded before the next command (a redirection or a lost node).
    private var stale = false
    /// How many redirections or TRYAGAINs one command may meet before failing.
    static let maxRedirects = 8

    /// The configuration the connection was made with (its endpoint names the cluster in
    /// ``knownNodes``).
    private let origin: RedisConfiguration

    init(seed: RedisNode, map: RedisClusterMap, origin: RedisConfiguration) {
        self.configuration = seed.configuration
        self.origin = origin
        self.map = map
        var seeds = [origin.endpoint] + origin.otherSeeds
        if !seeds.contains(seed.configuration.endpoint) { seeds.append(seed.configuration.endpoint) }
        self.seeds = seeds
        nodes[seed.configuration.endpoint] = seed
        Self.remember(map, for: origin)
    }

    /// The nodes of each cluster this process has connected to, by the endpoint of its URL: a
    /// new connection tries them when that node is down (it failed over, and the URL still
    /// names it).
    private static let known = Mutex<[String: [String]]>([:])

    /// The nodes last seen in the cluster `configuration` names.
    static func knownNodes(of configuration: RedisConfiguration) -> [String] {
        known.withLock { $0[configuration.endpoint] ?? [] }
    }

    private static func remember(_ map: RedisClusterMap, for origin: RedisConfiguration) {
        let nodes = map.allNodes
        known.withLock { $0[origin.endpoint] = nodes }
    }

    func close() {
        for node in nodes.values { node.close() }
    }

    var isConnected: Bool { nodes.values.contains { $0.isConnected } }

    // MARK: The map

    /// The connection to `endpoint`, created (not yet connected) on first use.
    func node(_ endpoint: String) throws -> RedisNode {
        if let node = nodes[endpoint] { return node }
        guard let settings = configuration.at(endpoint) else {
            throw RedisError.unexpectedReply(command: "CLUSTER SLOTS", reply: "bad node address '\(endpoint)'")
        }
        let node = try RedisNode(configuration: settings, connectNow: false)
        nodes[endpoint] = node
        return node
    }

    /// Reloads the slot map from the first node that answers: known masters, then replicas,
    /// then the seed.
    func refresh() throws {
        var candidates = map.allNodes
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        var lastError: Error?
        for endpoint in candidates {
            do {
                let node = try node(endpoint)
                let reply = try node.command(["CLUSTER", "SLOTS"])
                let fresh = try RedisClusterMap(clusterSlots: reply, defaultHost: node.configuration.host)
                guard !fresh.shards.isEmpty else { continue }
                map = fresh
                stale = false
                Self.remember(fresh, for: origin)
                return
            } catch {
                lastError = error
            }
        }
        throw RedisError.connectionFailed(
            endpoint: seeds.joined(separator: ","),
            reason: "no node of the Redis Cluster gave its slot map (\(lastError.map { "\($0)" } ?? "no nodes known"))")
    }

    /// Reloads the map if a redirection or a lost node made it suspect; a failure to reload is
    /// left to the command (it fails against the old map with a clearer error).
    private func refreshIfStale() {
        if stale { try? refresh() }
    }

    /// The master of `slot`; `key` names it in the error when no node serves it.
    func master(ofSlot slot: Int, key: String) throws -> String {
        guard let endpoint = map.master(ofSlot: slot) else { throw RedisError.slotNotCovered(slot: slot, key: key) }
        return endpoint
    }

    /// A node for commands without keys: the first master.
    private var anyMaster: String { map.masters.first ?? seeds[0] }

    /// The one slot of `keys` (nil without keys); throws ``RedisError/crossSlot(command:keys:)``
    /// when they span several.
    static func slot(of keys: [String], command: String) throws -> Int? {
        guard let first = keys.first else { return nil }
        let slot = RedisSlot.of(first)
        for key in keys.dropFirst() where RedisSlot.of(key) != slot {
            throw RedisError.crossSlot(command: command, keys: keys)
        }
        return slot
    }

    // MARK: Redirections

    /// A `MOVED slot host:port` or `ASK slot host:port` error message, parsed.
    enum Redirect: Equatable {
        case moved(slot: Int, endpoint: String)
        case ask(slot: Int, endpoint: String)
        case tryAgain

        init?(_ message: String) {
            let parts = message.split(separator: " ")
            if parts.first == "TRYAGAIN" {
                self = .tryAgain
                return
            }
            guard parts.count == 3, let slot = Int(parts[1]) else { return nil }
            var endpoint = String(parts[2])
            if endpoint.hasPrefix(":") { endpoint = "127.0.0.1" + endpoint }
            switch parts[0] {
            case "MOVED": self = .moved(slot: slot, endpoint: endpoint)
            case "ASK": self = .ask(slot: slot, endpoint: endpoint)
            default: return nil
            }
        }
    }

    /// Applies a redirection to the map; returns where to send the command next and whether
    /// it needs `ASKING` first.
    private func follow(_ redirect: Redirect, current: String) -> (endpoint: String, asking: Bool) {
        switch redirect {
        case .moved(let slot, let endpoint):
            map.moved(slot: slot, to: endpoint)
            stale = true
            return (endpoint, false)
        case .ask(_, let endpoint):
            return (endpoint, true)
        case .tryAgain:
            usleep(20_000)
            return (current, false)
        }
    }

    /// Runs `body` on the node serving `keys`, following redirections.
    func routed<T>(_ keys: [String], command: String, _ body: (RedisNode) throws -> T) throws -> T {
        refreshIfStale()
        let slot = try Self.slot(of: keys, command: command)
        var endpoint = try slot.map { try master(ofSlot: $0, key: keys[0]) } ?? anyMaster
        var asking = false
        var redirects = 0
        while true {
            do {
                let node = try node(endpoint)
                if asking { try node.command(["ASKING"]) }
                return try body(node)
            } catch let error as RedisError {
                if error.isConnectionError { stale = true }
                if Self.isConnectFailure(error), redirects < Self.maxRedirects,
                    let target = rerouted(slot: slot, from: endpoint)
                {
                    redirects += 1
                    (endpoint, asking) = (target, false)
                    continue
                }
                guard case .server(_, let message) = error, let redirect = Redirect(message),
                    redirects < Self.maxRedirects
                else { throw error }
                redirects += 1
                (endpoint, asking) = follow(redirect, current: endpoint)
            }
        }
    }

    /// After `endpoint` could not be reached (so nothing was sent to it): the map reloaded at
    /// once, and the node now serving `slot` if that is another one (a replica promoted in a
    /// failover), else nil. Without it the command would fail against the old map and the
    /// caller's retry, after its backoff, would be the first to use the new one.
    private func rerouted(slot: Int?, from endpoint: String) -> String? {
        guard (try? refresh()) != nil else { return nil }
        return successor(of: endpoint, slot: slot)
    }

    /// The node the current map names for `slot` (any master without one), when it is not
    /// `endpoint`.
    private func successor(of endpoint: String, slot: Int?) -> String? {
        let target = slot.map { map.master(ofSlot: $0) } ?? anyMaster
        return target == endpoint ? nil : target
    }

    // MARK: Pipelines

    /// A run of the caller's commands sent together: one command, or a `MULTI` ... `EXEC` block.
    struct Unit {
        var range: Range<Int>
        var slot: Int?
        var key: String
        var isTransaction: Bool
    }

    /// Splits `commands` into units and finds each unit's slot.
    static func units(_ commands: [[String]]) throws -> [Unit] {
        var units: [Unit] = []
        var index = 0
        while index < commands.count {
            let name = RedisSlot.upper(commands[index].first ?? "")
            if name == "MULTI",
                let end = commands[(index + 1)...].firstIndex(where: {
                    let word = RedisSlot.upper($0.first ?? "")
                    return word == "EXEC" || word == "DISCARD"
                })
            {
                let keys = commands[(index + 1)..<end].flatMap { RedisSlot.keys(of: $0) }
                let slot = try slot(of: keys, command: "MULTI")
                units.append(Unit(range: index..<(end + 1), slot: slot, key: keys.first ?? "", isTransaction: true))
                index = end + 1
            } else {
                let keys = RedisSlot.keys(of: commands[index])
                let slot = try slot(of: keys, command: name)
                units.append(Unit(range: index..<(index + 1), slot: slot, key: keys.first ?? "", isTransaction: false))
                index += 1
            }
        }
        return units
    }

    /// The redirection a unit's replies ask for: the command's error, or for a transaction the
    /// refusal of a queued command (EXEC then aborted, nothing ran).
    private static func redirect(in replies: ArraySlice<RedisReply>, unit: Unit) -> Redirect? {
        if unit.isTransaction {
            for reply in replies.dropFirst().dropLast() {
                if case .error(let message) = reply, let redirect = Redirect(message) { return redirect }
            }
            return nil
        }
        if case .error(let message) = replies.first, let redirect = Redirect(message) { return redirect }
        return nil
    }

    /// Sends `commands` (MULTI ... EXEC blocks kept together, each inside one slot) to the
    /// nodes serving them, all nodes written before any is read, and returns the replies in the
    /// caller's order, error replies in place. A redirected unit is sent again to its new node
    /// (a redirection means it did not run). A node that fails fails the call, after the other
    /// nodes' replies were read.
    func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        refreshIfStale()
        var replies = [RedisReply](repeating: .null, count: commands.count)
        var todo: [(unit: Unit, endpoint: String?, asking: Bool)] = try Self.units(commands).map { ($0, nil, false) }
        var redirects = 0
        while !todo.isEmpty {
            var order: [String] = []
            var byNode: [String: [Int]] = [:]
            for (position, item) in todo.enumerated() {
                let endpoint =
                    try item.endpoint ?? item.unit.slot.map { try master(ofSlot: $0, key: item.unit.key) }
                    ?? anyMaster
                todo[position].endpoint = endpoint
                if byNode[endpoint] == nil { order.append(endpoint) }
                byNode[endpoint, default: []].append(position)
            }
            var failure: Error?
            var written: [String] = []
            var unreachable: [(endpoint: String, error: RedisError)] = []
            for endpoint in order {
                var batch: [[String]] = []
                for position in byNode[endpoint]! {
                    if todo[position].asking { batch.append(["ASKING"]) }
                    batch += commands[todo[position].unit.range]
                }
                do {
                    try node(endpoint).writePipeline(batch)
                    written.append(endpoint)
                } catch let error as RedisError where Self.isConnectFailure(error) {
                    unreachable.append((endpoint, error))
                } catch {
                    failure = failure ?? error
                }
            }
            var again: [(unit: Unit, endpoint: String?, asking: Bool)] = []
            // Units for a node that could not be reached were not sent: after a failover the
            // reloaded map names the promoted replica, and they go there in the next round.
            for (endpoint, error) in unreachable {
                stale = true
                let refreshed = redirects < Self.maxRedirects && (try? refresh()) != nil
                for position in byNode[endpoint]! {
                    let unit = todo[position].unit
                    if refreshed, let target = successor(of: endpoint, slot: unit.slot) {
                        again.append((unit, target, false))
                    } else {
                        failure = failure ?? error
                    }
                }
            }
            for endpoint in written {
                let positions = byNode[endpoint]!
                let count = positions.reduce(0) { $0 + todo[$1].unit.range.count + (todo[$1].asking ? 1 : 0) }
                let received: [RedisReply]
                do {
                    received = try node(endpoint).readReplies(count)
                } catch {
                    failure = failure ?? error
                    continue
                }
                var next = 0
                for position in positions {
                    let item = todo[position]
                    if item.asking { next += 1 }
                    let slice = received[next..<(next + item.unit.range.count)]
                    next += item.unit.range.count
                    if let redirect = Self.redirect(in: slice, unit: item.unit), redirects < Self.maxRedirects {
                        let (target, asking) = follow(redirect, current: endpoint)
                        again.append((item.unit, target, asking))
                    } else {
                        replies.replaceSubrange(item.unit.range, with: slice)
                    }
                }
            }
            if let failure {
                if (failure as? RedisError)?.isConnectionError ?? true { stale = true }
                throw failure
            }
            if !again.isEmpty { redirects += 1 }
            todo = again
        }
        return replies
    }

    /// A connection that could not be opened: nothing was sent.
    private static func isConnectFailure(_ error: RedisError) -> Bool {
        if case .connectionFailed = error { return true }
        return false
    }

    // MARK: Replication

    /// `WAIT count timeout` on every master holding `keys` (all written to before any is read).
    func waitForReplicas(_ count: Int, timeoutMilliseconds: Int, keys: [String]) throws {
        var endpoints: [String] = []
        for key in keys {
            let endpoint = try master(ofSlot: RedisSlot.of(key), key: key)
            if !endpoints.contains(endpoint) { endpoints.append(endpoint) }
        }
        let wait = ["WAIT", String(count), String(timeoutMilliseconds)]
        for endpoint in endpoints { try node(endpoint).writePipeline([wait]) }
        var shortfall: RedisError?
        for endpoint in endpoints {
            let reply = try node(endpoint).readReplies(1)[0]
            let acknowledged = reply.int ?? 0
            if acknowledged < count, shortfall == nil {
                shortfall = .notReplicated(endpoint: endpoint, acknowledged: acknowledged, required: count)
            }
        }
        if let shortfall { throw shortfall }
    }

    // MARK: Every node

    /// Runs `arguments` on every master (and with `replicas`, every replica too). A node of
    /// the map that cannot be reached (a master killed, its replica promoted since) makes the
    /// map suspect: it is reloaded and the command sent once more to the nodes it names. Without
    /// that, a connection used only for every-node reads (the lost-writes check, Redis memory)
    /// would keep asking the dead master for as long as no keyed command refreshed its map.
    /// (A lost connection may have run the command once already: the every-node commands
    /// Choreo sends, `INFO`, `SCRIPT LOAD`, `ACL SETUSER`, `CLUSTER INFO`, are safe to repeat.)
    func onEveryNode(_ arguments: [String], replicas: Bool) throws -> [(endpoint: String, reply: RedisReply)] {
        refreshIfStale()
        do {
            return try sendToEveryNode(arguments, replicas: replicas)
        } catch let error as RedisError where error.isConnectionError {
            stale = true
            try refresh()
            return try sendToEveryNode(arguments, replicas: replicas)
        }
    }

    private func sendToEveryNode(_ arguments: [String], replicas: Bool) throws -> [(
        endpoint: String, reply: RedisReply
    )] {
        let targets = replicas ? map.allNodes : map.masters
        return try targets.map { ($0, try node($0).command(arguments)) }
    }
}
