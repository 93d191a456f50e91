// RedisClusterMap: which node serves each hash slot of a Redis Cluster, parsed from
// `CLUSTER SLOTS`; a plain value, updated after MOVED and refreshed after failovers.

/// The slot map of a Redis Cluster: the master (and replicas) of every hash slot.
public struct RedisClusterMap: Sendable, Equatable {
    /// One shard: a slot range, its master and its replicas (`host:port` endpoints).
    public struct Shard: Sendable, Equatable {
        /// The first and last slot of the range.
        public var slots: ClosedRange<Int>
        /// The master's endpoint.
        public var master: String
        /// The replicas' endpoints.
        public var replicas: [String]
    }

    /// The slot ranges, as the cluster reported them.
    public private(set) var shards: [Shard]
    /// For each slot, the index of its master in ``masters`` (or -1: not covered).
    private var owners: [Int16]
    /// The masters' endpoints, in order of first appearance.
    public private(set) var masters: [String]

    /// A map from shards.
    public init(shards: [Shard]) {
        self.shards = shards
        self.owners = Array(repeating: -1, count: RedisSlot.count)
        self.masters = []
        for shard in shards { assign(shard.slots, to: shard.master) }
    }

    /// Parses a `CLUSTER SLOTS` reply. A node reported without an address (`""` or `?`) is on
    /// `defaultHost`, the host the reply came from.
    public init(clusterSlots reply: RedisReply, defaultHost: String) throws {
        func fail(_ why: String) -> RedisError {
            .unexpectedReply(command: "CLUSTER SLOTS", reply: "\(why): \(reply.description)")
        }
        func endpoint(_ node: RedisReply) throws -> String {
            guard let parts = node.array, parts.count >= 2, let port = parts[1].int else { throw fail("bad node") }
            var host = parts[0].string ?? ""
            if host.isEmpty || host == "?" { host = defaultHost }
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
        guard let rows = reply.array else { throw fail("not an array") }
        var shards: [Shard] = []
        for row in rows {
            guard let parts = row.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                start >= 0, end < RedisSlot.count, start <= end
            else { throw fail("bad slot range") }
            shards.append(
                Shard(slots: start...end, master: try endpoint(parts[2]), replicas: try parts[3...].map(endpoint)))
        }
        self.init(shards: shards)
    }

    /// The master serving `slot`, or nil when no node covers it.
    public func master(ofSlot slot: Int) -> String? {
        let owner = owners[slot]
        return owner < 0 ? nil : masters[Int(owner)]
    }

    /// Every node of the map: masters first, then replicas.
    public var allNodes: [String] {
        var nodes = masters
        for shard in shards { for replica in shard.replicas where !nodes.contains(replica) { nodes.append(replica) } }
        return nodes
    }

    /// Whether every slot is served.
    public var coversEverySlot: Bool { !owners.contains(-1) }

    /// Records a `MOVED slot endpoint` redirection: `slot` is now served by `endpoint`.
    public mutating func moved(slot: Int, to endpoint: String) {
        assign(slot...slot, to: endpoint)
    }

    private mutating func assign(_ slots: ClosedRange<Int>, to master: String) {
        var index = masters.firstIndex(of: master)
        if index == nil {
            masters.append(master)
            index = masters.count - 1
        }
        for slot in slots { owners[slot] = Int16(index!) }
    }
}
