import ChoreoTesting
import Foundation
import Redis
import Testing

@Suite("Redis failures")
struct RedisFailureTests {
    @Test(
        "a malformed URL is one clear error naming the problem",
        arguments: [
            ("http://localhost:6379", "unsupported scheme"),
            ("redis://localhost:notaport", "port is not a number"),
            ("redis://localhost:70000", "out of range"),
            ("redis://:6379", "missing host"),
            ("redis://localhost:6379/x", "database"),
            ("localhost:6379", "expected redis://"),
        ])
    func malformedURL(url: String, reason: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("\(url) was accepted")
        } catch let error as RedisError {
            #expect("\(error)".contains(reason))
            #expect(!"\(error)".contains("\n"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("credentials in a URL are parsed and never printed")
    func credentials() throws {
        let configuration = try RedisConfiguration(url: "redis://svc:p%40ss@10.0.0.1:6380/3")
        #expect(configuration.username == "svc")
        #expect(configuration.password == "p@ss")
        #expect(configuration.database == 3)
        #expect(configuration.port == 6380)
        #expect(!configuration.description.contains("p@ss"))
        do {
            _ = try RedisConfiguration(url: "redis://svc:secret@host:bad")
        } catch {
            #expect(!"\(error)".contains("secret"))
        }
    }

    @Test("an unreachable server is a connectionFailed error naming the endpoint")
    func unreachable() throws {
        let port = try freePort()
        do {
            _ = try RedisConnection(url: "redis://127.0.0.1:\(port)")
            Issue.record("connected to a closed port")
        } catch let error as RedisError {
            guard case .connectionFailed(let endpoint, _) = error else {
                Issue.record("expected connectionFailed, got \(error)")
                return
            }
            #expect(endpoint == "127.0.0.1:\(port)")
            #expect("\(error)".hasPrefix("cannot connect to Redis at 127.0.0.1:\(port)"))
        }
    }

    @Test("a wrong password is an authenticationFailed error")
    func wrongPassword() throws {
        let admin = try RedisConnection(url: TestEnvironment.redisURL)
        let user = TestEnvironment.uniqueName("user")
        try admin.command(["ACL", "SETUSER", user, "on", ">right", "~*", "+@all"])
        defer { _ = try? admin.command(["ACL", "DELUSER", user]) }
        let base = try RedisConfiguration(url: TestEnvironment.redisURL)
        #expect(throws: Never.self) {
            _ = try RedisConnection(url: "redis://\(user):right@127.0.0.1:\(base.port)")
        }
        do {
            _ = try RedisConnection(url: "redis://\(user):wrong@127.0.0.1:\(base.port)")
            Issue.record("wrong password accepted")
        } catch let error as RedisError {
            guard case .authenticationFailed = error else {
                Issue.record("expected authenticationFailed, got \(error)")
                return
            }
            #expect(!"\(error)".contains("wrong@"))
        }
    }

    @Test("while Redis is down calls fail fast with a clear error; after it returns they succeed")
    func serverRestart() async throws {
        let server = try EphemeralRedis()
        var configuration = try RedisConfiguration(url: server.url)
        configuration.maxReconnectDelay = 0.2
        let connection = try RedisConnection(configuration: configuration)
        try connection.command(["SET", "survives", "yes"])
        server.stop()
        #expect(throws: RedisError.self) { try connection.command(["GET", "survives"]) }
        do {
            try connection.command(["GET", "survives"])
        } catch let error as RedisError {
            #expect(error.isConnectionError)
            #expect("\(error)".contains("127.0.0.1:\(server.port)"))
        }
        try server.start()
        try await eventually("reconnect to the restarted server") {
            try connection.command(["GET", "survives"]).string == "yes"
        }
    }
}
