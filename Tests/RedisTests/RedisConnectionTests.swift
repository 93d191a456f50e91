import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Redis connection")
struct RedisConnectionTests {
    let redis: RedisConnection
    let key = TestEnvironment.uniqueName("k")

    init() throws {
        redis = try RedisConnection(url: TestEnvironment.redisURL)
    }

    @Test("every RESP2 reply type arrives as a Swift value, binary-safe")
    func replyTypes() throws {
        #expect(try redis.command(["SET", key, "v"]) == .status("OK"))
        let binary: [UInt8] = [0, 1, 255, 13, 10, 37, 115]
        try redis.command(bytes: [Array("SET".utf8), Array(key.utf8), binary])
        #expect(try redis.command(["GET", key]) == .bulk(binary))
        #expect(try redis.command(["GET", key + ":missing"]) == .null)
        #expect(try redis.command(["INCR", key + ":n"]) == .integer(1))
        let nested = try redis.command(["EVAL", "return {1, 'two', {3, 'four'}}", "0"])
        #expect(
            nested
                == .array([.integer(1), .bulk(Array("two".utf8)), .array([.integer(3), .bulk(Array("four".utf8))])]))
        #expect(throws: RedisError.self) { try redis.command(["LPUSH", key, "x"]) }
        do {
            try redis.command(["LPUSH", key, "x"])
        } catch let error as RedisError {
            #expect(error.serverCode == "WRONGTYPE")
        }
        let quoted = "it's \"quoted\" %s %d \u{1F600}"
        try redis.command(["SET", key, quoted])
        #expect(try redis.command(["GET", key]).string == quoted)
    }

    @Test("a pipeline of 1,000 commands returns 1,000 replies in order, errors in place")
    func pipeline() throws {
        var commands = (0..<1000).map { _ in ["INCR", key] }
        commands[500] = ["NOSUCHCOMMAND"]
        let replies = try redis.pipeline(commands)
        #expect(replies.count == 1000)
        #expect(replies[0] == .integer(1))
        #expect(replies[500].errorMessage?.contains("unknown command") == true)
        #expect(replies[999] == .integer(999))
    }

    @Test("a script runs by EVALSHA and is reloaded after NOSCRIPT")
    func scriptReload() throws {
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try script.run(on: redis, keys: [key], arguments: ["5"]) == .integer(5))
        let digest = try #require(script.digest)
        try redis.command(["SCRIPT", "FLUSH"])
        #expect(try redis.command(["SCRIPT", "EXISTS", digest]) == .array([.integer(0)]))
        #expect(try script.run(on: redis, keys: [key], arguments: ["2"]) == .integer(7))
    }

    @Test("a connection killed by the server reconnects on the next command")
    func reconnectAfterKill() throws {
        let id = try #require(try redis.command(["CLIENT", "ID"]).int)
        let killer = try RedisConnection(url: TestEnvironment.redisURL)
        try killer.command(["CLIENT", "KILL", "ID", String(id)])
        // The dropped socket is noticed before the next command is written.
        #expect(try redis.command(["PING"]) == .status("PONG"))
        let newID = try #require(try redis.command(["CLIENT", "ID"]).int)
        #expect(newID != id)
    }

    @Test("a blocking read longer than the command timeout waits and then returns empty")
    func blockingReadLongerThanTimeout() throws {
        var configuration = try RedisConfiguration(url: TestEnvironment.redisURL)
        configuration.commandTimeout = 0.2
        let connection = try RedisConnection(configuration: configuration)
        try connection.xgroupCreate(key, group: "g")
        let started = Date()
        let batches = try connection.xreadgroup(
            group: "g", consumer: "c", streams: [(key, ">")], count: 10, blockMilliseconds: 500)
        #expect(batches.isEmpty)
        #expect(Date().timeIntervalSince(started) >= 0.45)
        #expect(try connection.command(["PING"]) == .status("PONG"))
    }

    @Test("the async client runs commands off the caller's thread")
    func asyncClient() async throws {
        let client = try RedisClient(url: TestEnvironment.redisURL)
        try await client.command(["SET", key, "async"])
        #expect(try await client.command(["GET", key]).string == "async")
        let replies = try await client.pipeline([["INCR", key + ":c"], ["INCR", key + ":c"]])
        #expect(replies == [.integer(1), .integer(2)])
        // More blocked commands in flight than the cooperative pool has threads, and this task
        // still runs and sees every one of them blocked in Redis at once.
        let width = ProcessInfo.processInfo.activeProcessorCount + 2
        let blockers = try (0..<width).map { _ in try RedisClient(url: TestEnvironment.redisURL) }
        let blocked = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for blocker in blockers {
                    group.addTask { _ = try await blocker.command(["BLPOP", key + ":none", "4"]) }
                }
                try await group.waitForAll()
            }
        }
        try await eventually("\(width) commands blocked at once", timeout: 3.5) {
            let info = try await client.command(["INFO", "clients"]).string ?? ""
            let count = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("blocked_clients:") }
                .flatMap { Int($0.dropFirst("blocked_clients:".count)) }
            return (count ?? 0) >= width
        }
        try await blocked.value
    }

    @Test("concurrent callers share round trips: every reply reaches its caller, errors only the failing one")
    func autoPipelining() async throws {
        let client = try RedisClient(url: TestEnvironment.redisURL)
        let counter = key + ":n"
        let values = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<500 { group.addTask { try await client.command(["INCR", counter]).int ?? -1 } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(values.sorted() == Array(1...500))
        try await client.command(["SET", key + ":text", "x"])
        await #expect(throws: RedisError.self) { try await client.command(["INCR", key + ":text"]) }
        #expect(try await client.command(["GET", counter]).string == "500")
        // A group is sent back to back: MULTI ... EXEC stays one transaction among other callers.
        let replies = try await withThrowingTaskGroup(of: [RedisReply].self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await client.group([["MULTI"], ["INCR", counter], ["INCR", counter], ["EXEC"]])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for reply in replies {
            guard case .array(let results) = reply.last, results.count == 2,
                let first = results[0].int, let second = results[1].int
            else {
                Issue.record("EXEC did not answer two integers: \(reply)")
                continue
            }
            #expect(second == first + 1)
        }
        // A script is reloaded after the server forgets it.
        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        #expect(try await client.run(script, keys: [key + ":s"]) == .integer(1))
        try await client.command(["SCRIPT", "FLUSH"])
        #expect(try await client.run(script, keys: [key + ":s"]) == .integer(2))
    }

    @Test("concurrent transactions share one MULTI/EXEC, each atomic with its own results; a rejected one fails alone")
    func mergedTransactions() async throws {
        let client = try RedisClient(url: TestEnvironment.redisURL)
        let counter = key + ":t"
        let results = try await withThrowingTaskGroup(of: [RedisReply].self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await client.transaction([
                        ["INCR", counter], ["INCR", counter], ["SET", "\(counter):\(index)", String(index)],
                    ])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 200)
        for result in results {
            // Nothing of another transaction runs between one transaction's commands.
            guard result.count == 3, let first = result[0].int, let second = result[1].int else {
                Issue.record("unexpected results \(result)")
                continue
            }
            #expect(second == first + 1)
            #expect(result[2] == .status("OK"))
        }
        #expect(try await client.command(["GET", counter]).string == "400")

        // A command Redis rejects while queueing (wrong arity) discards its transaction: that
        // caller gets EXECABORT, the callers merged with it still run theirs, once.
        let marker = key + ":m"
        let outcomes = await withTaskGroup(of: (Int, Result<[RedisReply], any Error>).self) { group in
            for index in 0..<40 {
                group.addTask {
                    let commands = index == 7 ? [["INCR", marker], ["GET"]] : [["INCR", marker]]
                    do { return (index, .success(try await client.transaction(commands))) } catch {
                        return (index, .failure(error))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for (index, outcome) in outcomes {
            switch outcome {
            case .success(let replies):
                #expect(index != 7, "the malformed transaction ran")
                #expect(replies.count == 1 && replies[0].int != nil)
            case .failure(let error):
                #expect(index == 7, "a well-formed transaction failed: \(error)")
                #expect("\(error)".contains("wrong number of arguments"), "the refusal is named: \(error)")
            }
        }
        #expect(try await client.command(["GET", marker]).string == "39")
    }
}
