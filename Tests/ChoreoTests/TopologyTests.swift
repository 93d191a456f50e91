import Choreo
import Foundation
import Testing

@Suite("Topology from streams.yml")
struct TopologyTests {
    let valid = """
        version: 1
        redis: redis://127.0.0.1:6379/0
        defaults:
          batch: 50
          backoff: { initial: 100ms, max: 10s }
        services:
          users:
            schema: users
          orders:
            schema: orders
            consumes: [users.events]
            publishes: [payments.commands]
            policy:
              max_deliveries: 7
              claim_idle: 1m
          payments:
            schema: payments
        routes:
          - method: POST
            path: /v1/users
            service: users
            command: CreateUser
            body:
              email: { type: email, max: 200 }
              name: string
        """

    @Test("a valid file yields services, policies with defaults, streams and routes")
    func parsesValidFile() throws {
        let topology = try Topology.parse(yaml: valid)
        #expect(topology.services.map(\.name) == ["users", "orders", "payments"])
        let orders = try #require(topology.service("orders"))
        #expect(orders.consumedStreams == ["{orders}.commands", "{users}.events"])
        #expect(orders.policy.batch == 50)
        #expect(orders.policy.maxDeliveries == 7)
        #expect(orders.policy.claimIdle == 60)
        #expect(orders.policy.backoff.initial == 0.1)
        #expect(topology.service("users")?.policy.maxDeliveries == ServicePolicy().maxDeliveries)
        #expect(topology.routes.first?.body["email"] == FieldSpec(type: .email, max: 200))
        #expect(topology.routes.first?.body["name"] == FieldSpec(type: .string))
        #expect(topology.consumers(of: "users.events").map(\.name) == ["orders"])
    }

    @Test(
        "mistakes are reported with file, key path, line and problem",
        arguments: [
            ("services:\n  users:\n    shema: users\n", "streams.yml:3: services.users.shema: unknown key"),
            (
                "services:\n  orders:\n    consumes: [ghost.events]\n",
                "services.orders.consumes[0]: no service publishes '{ghost}.events'"
            ),
            ("services:\n  users:\n    policy:\n      block: -1s\n", "services.users.policy.block: must be positive"),
            (
                "services:\n  users:\n    policy:\n      batch: lots\n",
                "services.users.policy.batch: must be an integer"
            ),
            ("services: {}\n", "services: at least one service is required"),
            (
                "services:\n  users: {}\nroutes:\n  - path: /v1/x\n    service: nobody\n    command: X\n",
                "routes[0].service: unknown service 'nobody'"
            ),
            ("version: 2\nservices:\n  a: {}\n", "version: only version 1 is supported"),
            ("services:\n  a:\n    schema: s\n  b:\n    schema: s\n", "schema 's' is already used by service 'a'"),
            ("services:\n  a:\n    schema: a\n    schema: b\n", "services.a.schema: duplicate key"),
            (
                "services:\n  a:\n    settings:\n      x: 1\n      x: 2\n",
                "services.a.settings.x: duplicate key"
            ),
            ("services:\n  a:\n    settings: [1]\n", "services.a.settings: must be a mapping"),
            (
                "services:\n  a:\n    policy:\n      not_yet_limit: 0s\n",
                "services.a.policy.not_yet_limit: must be positive"
            ),
        ])
    func reportsMistakes(yaml: String, expected: String) {
        do {
            _ = try Topology.parse(yaml: yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test("settings are kept as written for the service's code")
    func settings() throws {
        let topology = try Topology.parse(
            yaml: "services:\n  orders:\n    schema: orders\n    settings:\n      saga_deadline: 2s\n      note: x\n")
        #expect(topology.service("orders")?.settings == ["saga_deadline": "2s", "note": "x"])
        #expect(Topology.seconds("250ms") == 0.25)
        #expect(Topology.seconds("1.5m") == 90)
        #expect(Topology.seconds("soon") == nil)
    }

    @Test("streams.yml is found in the folder or the nearest parent, like git finds .git")
    func discovery() throws {
        let root = NSTemporaryDirectory() + "/discover-\(UInt64.random(in: 0..<UInt64.max))"
        let deep = root + "/project/services/orders"
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(Topology.discoverFile(from: deep, name: "choreo-test-none.yml") == nil)
        try "version: 1\n".write(toFile: root + "/project/streams.yml", atomically: true, encoding: .utf8)
        #expect(Topology.discoverFile(from: deep)?.hasSuffix("/project/streams.yml") == true)
        try "version: 1\n".write(toFile: root + "/project/services/streams.yml", atomically: true, encoding: .utf8)
        #expect(Topology.discoverFile(from: deep)?.hasSuffix("/project/services/streams.yml") == true, "the nearest")
    }

    @Test("environment variables override the connection URLs")
    func environmentOverrides() throws {
        let path = TestPaths.write(valid)
        let topology = try Topology.load(
            path: path, environment: ["REDIS_URL": "redis://10.1.1.1:7000/0", "DATABASE_URL": "postgres://x@y/z"])
        #expect(topology.redisURL == "redis://10.1.1.1:7000/0")
        #expect(topology.postgresURL == "postgres://x@y/z")
    }

    @Test("the repository's streams.yml is valid")
    func repositoryTopology() throws {
        let topology = try Topology.load(path: TestPaths.repositoryRoot + "/streams.yml", environment: [:])
        #expect(!topology.services.isEmpty)
    }
}
