import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Redis Cluster hash slots")
struct RedisSlotTests {
    @Test("CRC16 slots and hash tags as the cluster specification defines them")
    func slots() {
        #expect(RedisSlot.of("123456789") == 0x31C3 % 16384)
        #expect(RedisSlot.of("foo") == 12182)
        #expect(RedisSlot.of("{user1000}.following") == RedisSlot.of("{user1000}.followers"))
        #expect(RedisSlot.of("{user1000}.following") == RedisSlot.of("user1000"))
        // An empty tag is no tag; only the first {...} counts; the tag ends at the first }.
        #expect(RedisSlot.of("foo{}{bar}") == RedisSlot.of("foo{}{bar}"))
        #expect(RedisSlot.of("foo{}{bar}") != RedisSlot.of("bar"))
        #expect(RedisSlot.of("foo{{bar}}zap") == RedisSlot.of("{bar"))
        #expect(RedisSlot.of("foo{bar}{zap}") == RedisSlot.of("bar"))
    }

    @Test("The keys of the commands Choreo sends")
    func keys() {
        #expect(RedisSlot.keys(of: ["XADD", "s", "*", "a", "b"]) == ["s"])
        #expect(
            RedisSlot.keys(of: ["XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "STREAMS", "a", "b", ">", ">"]) == [
                "a", "b",
            ])
        #expect(RedisSlot.keys(of: ["EVALSHA", "abc", "2", "k1", "k2", "arg"]) == ["k1", "k2"])
        #expect(RedisSlot.keys(of: ["XGROUP", "CREATE", "s", "g", "0"]) == ["s"])
        #expect(RedisSlot.keys(of: ["XINFO", "GROUPS", "s"]) == ["s"])
        #expect(RedisSlot.keys(of: ["DEL", "a", "b"]) == ["a", "b"])
        #expect(RedisSlot.keys(of: ["PING"]).isEmpty)
        #expect(RedisSlot.keys(of: ["MULTI"]).isEmpty)
    }

    @Test("A CLUSTER SLOTS reply becomes a map; MOVED patches it")
    func map() throws {
        let node = { (port: Int64) in RedisReply.array([.bulk(Array("".utf8)), .integer(port), .bulk([])]) }
        let reply = RedisReply.array([
            .array([.integer(0), .integer(8000), node(7000), node(7003)]),
            .array([.integer(8001), .integer(16383), node(7001)]),
        ])
        var map = try RedisClusterMap(clusterSlots: reply, defaultHost: "127.0.0.1")
        #expect(map.masters == ["127.0.0.1:7000", "127.0.0.1:7001"])
        #expect(map.master(ofSlot: 8000) == "127.0.0.1:7000")
        #expect(map.master(ofSlot: 8001) == "127.0.0.1:7001")
        #expect(map.coversEverySlot)
        #expect(map.allNodes == ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7003"])
        map.moved(slot: 5, to: "127.0.0.1:7001")
        #expect(map.master(ofSlot: 5) == "127.0.0.1:7001")
        #expect(map.master(ofSlot: 6) == "127.0.0.1:7000")
    }
}

@Suite("Redis Cluster client (a real 3-master, 3-replica cluster)", .serialized)
struct RedisClusterTests {
    @Test("Any node as the URL: the client finds the cluster and every slot's master")
    func detects() throws {
        for port in TestCluster.ports {
            let redis = try RedisConnection(url: TestCluster.url(port: port))
            #expect(redis.isCluster)
            let map = try #require(redis.clusterMap)
            #expect(map.masters.count == 3)
            #expect(map.allNodes.count == 6)
            #expect(map.coversEverySlot)
        }
        #expect(try RedisConnection(url: TestEnvironment.redisURL).isCluster == false)
    }

    @Test("Commands go to the master of their key's slot; hash tags keep keys together")
    func routes() throws {
        let redis = try RedisConnection(url: TestCluster.url)
        let prefix = TestEnvironment.uniqueName("k")
        var nodes: Set<String> = []
        for index in 0..<100 {
            let key = "\(prefix):\(index)"
            try redis.command(["SET", key, String(index)])
            #expect(try redis.command(["GET", key]).string == String(index))
            nodes.insert(try redis.endpoint(ofKey: key))
            // The node that holds it says so.
            let holder = try redis.command(["CLUSTER", "KEYSLOT", key]).int
            #expect(holder == RedisSlot.of(key))
        }
        #expect(nodes.count == 3)
        // Keys with one tag: one slot, so a multi-key command works.
        try redis.command(["MSET", "{\(prefix)}.a", "1", "{\(prefix)}.b", "2"])
        #expect(try redis.command(["MGET", "{\(prefix)}.a", "{\(prefix)}.b"]) == .array([.bulk([49]), .bulk([50])]))
    }

    @Test("A pipeline across nodes returns the replies in the caller's order; transactions stay in one slot")
    func pipelines() throws {
        let redis = try RedisConnection(url: TestCluster.url)
        let prefix = TestEnvironment.uniqueName("p")
        let keys = (0..<600).map { "\(prefix):\($0)" }
        let sets = keys.enumerated().map { ["SET", $1, "v\($0)"] }
        let replies = try redis.pipeline(sets + keys.map { ["GET", $0] })
        #expect(replies.count == 1200)
        #expect(replies[0..<600].allSatisfy { $0 == .status("OK") })
        #expect(replies[600...].map(\.string) == keys.indices.map { "v\($0)" })

        let tag = "{\(prefix)}"
        let transaction = try redis.pipeline([
            ["MULTI"], ["INCR", "\(tag).n"], ["INCR", "\(tag).n"], ["EXEC"], ["GET", keys[0]],
        ])
        #expect(transaction[3] == .array([.integer(1), .integer(2)]))
        #expect(transaction[4].string == "v0")

        // Keys of several slots in one transaction: refused before sending, naming the keys.
        #expect {
            try redis.pipeline([["MULTI"], ["SET", keys[0], "x"], ["SET", keys[1], "y"], ["EXEC"]])
        } throws: { error in
            guard case RedisError.crossSlot(let command, let named) = error else { return false }
            return command == "MULTI" && named == [keys[0], keys[1]] && "\(error)".contains("hash tag")
        }
        #expect(try redis.command(["GET", keys[0]]).string == "v0")
        #expect(throws: RedisError.self) { try redis.command(["DEL", keys[0], keys[1]]) }
    }

    @Test("writeThen: the writes in their slots, then the acknowledgement")
    func writeThen() throws {
        let redis = try RedisConnection(url: TestCluster.url)
        let input = "{\(TestEnvironment.uniqueName("in"))}.events"
        let outputs = (0..<6).map { _ in "{\(TestEnvironment.uniqueName("out"))}.events" }
        try redis.xgroupCreate(input, group: "g", startID: "0")
        let id = try redis.xadd(input, fields: [StreamField("type", "A")])
        try redis.xadd(input, fields: [StreamField("type", "B")])
        _ = try redis.xreadgroup(group: "g", consumer: "c", streams: [(input, ">")], count: 1)
        let writes = outputs.map { RedisConnection.xaddArguments($0, fields: [StreamField("type", "Out")]) }
        let next = try redis.writeThen(
            writes, then: [["XACK", input, "g", id]],
            thenRead: RedisConnection.xreadgroupArguments(group: "g", consumer: "c", streams: [(input, ">")]))
        #expect(next.first?.entries.map { $0["type"] } == ["B"])
        for output in outputs { #expect(try redis.xlen(output) == 1) }
        #expect(try redis.xpendingSummary(input, group: "g").count == 1)

        // A refused write (a wrong type) stops the acknowledgement.
        let wrong = "{\(TestEnvironment.uniqueName("w"))}"
        try redis.command(["SET", wrong, "x"])
        let pending = try redis.xpending(input, group: "g", count: 10).map(\.id)
        #expect(throws: RedisError.self) {
            try redis.writeThen(
                [RedisConnection.xaddArguments(wrong, fields: [StreamField("a", "b")])],
                then: [["XACK", input, "g"] + pending])
        }
        #expect(try redis.xpendingSummary(input, group: "g").count == 1)
    }

    @Test("Scripts load on the node of their keys")
    func scripts() async throws {
        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        let redis = try RedisConnection(url: TestCluster.url)
        let prefix = TestEnvironment.uniqueName("lua")
        for index in 0..<20 {
            #expect(try script.run(on: redis, keys: ["\(prefix):\(index)"]).int == 1)
        }
        let client = try RedisClient(url: TestCluster.url)
        for index in 0..<20 {
            #expect(try await client.run(script, keys: ["\(prefix):\(index)"]).int == 2)
        }
    }

    @Test("RedisClient: concurrent transactions on many slots merge per slot; steps run in order")
    func client() async throws {
        let client = try RedisClient(url: TestCluster.url)
        #expect(client.isCluster)
        let prefix = TestEnvironment.uniqueName("c")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask {
                    let tag = "{\(prefix):\(index % 37)}"
                    let replies = try await client.transaction([["INCR", "\(tag).n"], ["GET", "\(tag).n"]])
                    #expect(replies.count == 2)
                }
            }
            try await group.waitForAll()
        }
        var total = 0
        for index in 0..<37 { total += try await client.command(["GET", "{\(prefix):\(index)}.n"]).int ?? 0 }
        #expect(total == 300)

        // Step 2 sees step 1's write, on another node.
        let first = "\(prefix):first"
        var second = "\(prefix):second"
        var salt = 0
        let redis = try RedisConnection(url: TestCluster.url)
        while try redis.endpoint(ofKey: second) == redis.endpoint(ofKey: first) {
            salt += 1
            second = "\(prefix):second\(salt)"
        }
        let replies = try await client.transaction(steps: [
            [["SET", first, "1"], ["EXPIRE", first, "60"]], [["SET", second, "2"]],
        ])
        #expect(replies == [.status("OK"), .integer(1), .status("OK")])
        // A failed step stops the next.
        let wrong = "\(prefix):wrong"
        try await client.command(["SET", wrong, "x"])
        await #expect(throws: RedisError.self) {
            try await client.transaction(steps: [[["XADD", wrong, "*", "a", "b"]], [["SET", "\(prefix):never", "1"]]])
        }
        #expect(try await client.command(["EXISTS", "\(prefix):never"]).int == 0)
    }

    @Test("MOVED after a slot changed hands and ASK during its migration are followed")
    func redirections() throws {
        let redis = try RedisConnection(url: TestCluster.url)
        let key = "{\(TestEnvironment.uniqueName("m"))}.x"
        let other = "{\(TestEnvironment.uniqueName("m"))}.y"
        try redis.command(["SET", key, "before"])
        let slot = RedisSlot.of(key)
        let map = try #require(redis.clusterMap)
        let source = try #require(map.master(ofSlot: slot))
        let target = try #require(map.masters.first { $0 != source })
        // Commands to one given node (the client would route them by key).
        let sourceNode = nodeConnection(source)
        let targetNode = nodeConnection(target)
        let sourceID = try #require(try sourceNode.command(["CLUSTER", "MYID"]).string)
        let targetID = try #require(try targetNode.command(["CLUSTER", "MYID"]).string)

        // Migration in progress: the key moved to the target, the slot not yet: ASK.
        try targetNode.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID])
        try sourceNode.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID])
        let (host, port) = split(target)
        try sourceNode.command(["MIGRATE", host, port, "", "0", "5000", "KEYS", key])
        // Other tests' keys may share the slot: they move too, or the slot cannot change hands.
        for neighbour in try sourceNode.keys(inSlot: slot) {
            try sourceNode.command(["MIGRATE", host, port, "", "0", "5000", "KEYS", neighbour])
        }
        #expect(try redis.command(["GET", key]).string == "before")
        #expect(
            try redis.pipeline([["GET", key], ["SET", other, "new"]]) == [.bulk(Array("before".utf8)), .status("OK")])

        // Migration finished: the slot is the target's everywhere: MOVED, then the map knows.
        for endpoint in map.masters {
            try nodeConnection(endpoint).command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID])
        }
        #expect(try redis.command(["GET", key]).string == "before")
        #expect(try redis.endpoint(ofKey: key) == target)
        #expect(try redis.pipeline([["GET", other]]) == [.bulk(Array("new".utf8))])

        // Back to where it was, so the cluster stays as ops/test made it.
        try sourceNode.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", targetID])
        try targetNode.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", sourceID])
        let (sourceHost, sourcePort) = split(source)
        for moved in try targetNode.keys(inSlot: slot) {
            try targetNode.command(["MIGRATE", sourceHost, sourcePort, "", "0", "5000", "KEYS", moved])
        }
        for endpoint in map.masters {
            try nodeConnection(endpoint).command(["CLUSTER", "SETSLOT", String(slot), "NODE", sourceID])
        }
        #expect(try redis.command(["GET", key]).string == "before")
        #expect(try redis.endpoint(ofKey: key) == source)
    }

    @Test("Errors a user can act on: an unreachable seed, a cluster without slots")
    func errors() throws {
        let port = try freePort()
        #expect {
            try RedisConnection(url: "redis://127.0.0.1:\(port)/0")
        } throws: { error in
            guard case RedisError.connectionFailed(let endpoint, _) = error else { return false }
            return endpoint == "127.0.0.1:\(port)"
        }
        // SELECT of another database is refused by a cluster, with Redis's reason.
        #expect {
            try RedisConnection(url: TestCluster.url.replacingOccurrences(of: "/0", with: "/3"))
        } throws: { error in
            "\(error)".contains("SELECT")
        }
    }

    /// Admin commands for the node at `endpoint`.
    private func nodeConnection(_ endpoint: String) -> NodeAdmin {
        NodeAdmin(endpoint: endpoint)
    }

    private func split(_ endpoint: String) -> (String, String) {
        let parts = endpoint.split(separator: ":")
        return (String(parts[0]), String(parts[1]))
    }
}

/// Admin commands sent to one node with redis-cli (the cluster client routes by key, and these
/// must reach a given node).
struct NodeAdmin {
    let endpoint: String

    /// The keys the node holds in `slot`.
    func keys(inSlot slot: Int) throws -> [String] {
        let text = try command(["CLUSTER", "GETKEYSINSLOT", String(slot), "10000"]).string ?? ""
        return text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    @discardableResult
    func command(_ arguments: [String]) throws -> RedisReply {
        let parts = endpoint.split(separator: ":")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-h", String(parts[0]), "-p", String(parts[1])] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // redis-cli prints an error reply as its code and message (and exits 0).
        let code = text.prefix { $0 != " " }
        if !code.isEmpty, code.allSatisfy({ $0.isUppercase }), text.contains(" "), code != "OK" {
            throw RedisError.server(command: arguments.joined(separator: " "), message: text)
        }
        return .bulk(Array(text.utf8))
    }
}
