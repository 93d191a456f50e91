import Choreo
import ChoreoTesting
import Foundation
import Operations
import Postgres
import Redis
import Shop
import Testing

/// The whole shop (`choreo up`: gateway and four services) on the Redis Cluster of ops/test.
@Suite("Reference system on a Redis Cluster", .timeLimit(.minutes(5)))
struct ClusterShopTests {
    static func client() async throws -> ShopClient {
        ShopClient(base: try await ShopSystem.cluster.value.base)
    }

    @Test("the services' streams spread over the masters; each service keeps its keys in one slot")
    func layout() async throws {
        let system = try await ShopSystem.cluster.value
        let topology = try Choreo.Topology.load(path: system.topologyPath, environment: system.environment)
        let redis = try RedisConnection(url: topology.redisURL)
        #expect(redis.isCluster)
        var masters: Set<String> = []
        for service in topology.services {
            let slot = RedisSlot.of(service.commandStream)
            for key in [
                service.eventStream, service.deadStream, Topology.workersKey(service.name),
                Topology.idempotencyKey(service: service.name, principal: "p", key: "k"),
            ] {
                #expect(RedisSlot.of(key) == slot, "\(key)")
            }
            masters.insert(try redis.endpoint(ofKey: service.commandStream))
        }
        #expect(masters.count >= 2, "the four services all landed on one master")
        // orders.events is partitioned: its partitions spread over the masters.
        let partitions = try #require(topology.service("orders")?.eventPartitioning)
        let partitionMasters = Set(try partitions.keys.map { try redis.endpoint(ofKey: $0) })
        #expect(partitionMasters.count >= 2, "\(partitions.keys)")
    }

    @Test("happy path and insufficient funds: verdicts, stock and balance as on a standalone server")
    func orders() async throws {
        let client = try await Self.client()
        let user = try await ShopTests.user(client, funds: 1_000)
        let widget = try await ShopTests.product(client, price: 400, stock: 5)
        let placed = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 2)]))
        #expect(placed.status == "succeeded", "\(placed.reply.body)")
        #expect(try await ShopTests.number(client, "/v1/accounts/\(user)", "balanceCents") == 200)
        let refused = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 1)]))
        #expect(refused.status == "failed")
        #expect(refused.error?["code"] as? String == "payment_failed")
        try await eventually("the refused order's stock released", timeout: 20) {
            try await ShopTests.number(client, "/v1/products/\(widget)", "stock") == 3
        }
        // The same Idempotency-Key: the same command, from the service's slot.
        let body = ShopTests.order(user, [(widget, 1)])
        let onceKey = TestEnvironment.uniqueName("once")
        let first = try await client.submit("/v1/orders", body, idempotencyKey: onceKey)
        let again = try await client.submit("/v1/orders", body, idempotencyKey: onceKey)
        #expect(first == again)
    }

    @Test("the standalone end-to-end scenarios, on the cluster", arguments: ShopTests.Scenario.allCases)
    func scenario(_ scenario: ShopTests.Scenario) async throws {
        try await scenario.run(Self.client())
    }

    @Test("a load run of 1,000 orders with random outcomes ends with the checker green")
    func loadRun() async throws {
        let system = try await ShopSystem.cluster.value
        var plan = LoadRun.Plan()
        plan.orders = 1_000
        plan.rate = 150
        plan.users = 20
        plan.products = 10
        let report = try await LoadRun(client: ShopClient(base: system.base), plan: plan) { _ in }.run()
        #expect(report.errors == 0, "\(report.firstErrors)")
        #expect(report.undecided == 0)
        #expect(report.accepted == 1_000)
        #expect(report.confirmed > 0)
        try await ShopTests.expectCheckerGreen(system)
    }

    @Test("least-privilege users are set on every node, replicas included, and hold on the cluster")
    func accessControl() async throws {
        let system = try await ShopSystem.cluster.value
        let topology = try Choreo.Topology.load(path: system.topologyPath, environment: system.environment)
        let admin = try RedisConnection(url: topology.redisURL)
        let user = TestEnvironment.uniqueName("acl")
        let orders = try #require(topology.service("orders"))
        try RedisACL.apply(
            user: user, password: "pw", rules: RedisACL.serviceRules(orders, topology: topology), on: admin)
        for port in TestCluster.ports {
            let node = try RedisConnection(url: "redis://\(user):pw@127.0.0.1:\(port)/0")
            #expect(node.isCluster)
            // Past the ACL check (id 0-0 is refused by XADD itself, so nothing reaches the
            // consumers), and denied a foreign service's stream.
            #expect {
                try node.command([
                    "XADD", orders.eventPartitioning?.key(0) ?? orders.eventStream, "0-0", "type", "Probe",
                ])
            } throws: { error in
                "\(error)".contains("greater than 0-0")
            }
            #expect(throws: RedisError.self) { try node.command(["XADD", "{payments}.dead", "*", "type", "X"]) }
        }
        _ = try admin.onEveryNode(["ACL", "DELUSER", user], replicas: true)
    }
}
