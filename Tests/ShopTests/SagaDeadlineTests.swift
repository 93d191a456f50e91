// SagaDeadlineTests: the order saga's deadline with real processes and separate worker pools:
// payments down, the order is cancelled at its deadline and its stock released, and the late
// verdict is compensated when payments returns; a dead-lettered OrderPlaced ends in a timeout.

import Choreo
import ChoreoTesting
import Foundation
import Postgres
import Redis
import Shop
import Testing

@Suite("Saga deadlines end to end", .serialized, .timeLimit(.minutes(5)))
struct SagaDeadlineTests {
    /// A shop of its own (its own database, so its checker sees its orders only, and its own
    /// Redis database, so its workers do not share the shared shop's streams and groups) with
    /// a 2 s deadline and a worker pool per service that the tests stop and start.
    static let system = Task {
        try await ShopSystem.start(
            redisURL: try TestEnvironment.redisDatabase(7), ownDatabase: true, separatePools: true,
            settings: ["orders": ["saga_deadline": "2s"]])
    }

    static func admin(_ system: ShopSystem) throws -> PostgresConnection {
        try PostgresConnection(url: system.environment["DATABASE_URL"]!)
    }

    @Test(
        "payments down: cancelled at the deadline, stock released, command failed: timeout; the late verdict is refunded"
    )
    func paymentsDown() async throws {
        let system = try await Self.system.value
        let client = ShopClient(base: system.base)
        let user = try await ShopTests.user(client, funds: 10_000)
        let widget = try await ShopTests.product(client, price: 250, stock: 5)
        try await system.stopPool("payments")
        defer { try? system.startPool("payments") }
        let started = Date()
        let outcome = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 2)]), timeout: 30)
        #expect(outcome.status == "failed")
        #expect(outcome.error?["code"] as? String == "timeout", "\(outcome.reply.body)")
        #expect(Date().timeIntervalSince(started) >= 2, "not before the deadline")
        #expect(try await client.get("/v1/orders/\(outcome.id)").json["status"] as? String == "cancelled")
        try await eventually("stock released", timeout: 20) {
            try await ShopTests.number(client, "/v1/products/\(widget)", "stock") == 5
        }
        // The saga's timeline shows the deadline OrderPlaced announced and the delayed message
        // that fired it.
        let trace = try await runChoreo(
            ["trace", outcome.id, "--json", "--topology", system.topologyPath], environment: system.environment)
        let steps = try #require((trace.json as? [String: Any])?["steps"] as? [[String: Any]], "\(trace.output)")
        let placed = try #require(steps.first { $0["type"] as? String == "OrderPlaced" })
        let deadline = try #require(placed["deadlineAt"] as? Int64)
        let fired = try #require(steps.first { $0["type"] as? String == "OrderDeadline" })
        let due = try #require(fired["due"] as? Int64)
        #expect(abs(due - deadline) < 1000, "the deadline fired at its time (due \(due), announced \(deadline))")
        #expect(steps.last { $0["type"] as? String == "OrderCancelled" } != nil)
        // Payments returns and handles the StockReserved it missed: it charges, orders announces
        // the cancellation again, and payments refunds.
        try system.startPool("payments")
        let admin = try Self.admin(system)
        try await eventually("the late charge refunded", timeout: 30) {
            try admin.query("SELECT status FROM payments.charges WHERE order_id = $1::uuid", [outcome.id]).first?
                .decode(String.self, "status") == "refunded"
        }
        #expect(try await ShopTests.number(client, "/v1/accounts/\(user)", "balanceCents") == 10_000)
        #expect(try await ShopTests.number(client, "/v1/products/\(widget)", "stock") == 5)
        #expect(try await client.get("/v1/commands/\(outcome.id)").json["status"] as? String == "failed")
        try await ShopTests.expectCheckerGreen(system)
    }

    @Test("a dead-lettered OrderPlaced ends in a timeout, not a hang, and nothing stays held")
    func deadLetteredPlaced() async throws {
        let system = try await Self.system.value
        let client = ShopClient(base: system.base)
        let user = try await ShopTests.user(client, funds: 10_000)
        let widget = try await ShopTests.product(client, price: 100, stock: 3)
        try await system.stopPool("inventory")
        defer { try? system.startPool("inventory") }
        let redis = try RedisConnection(url: system.environment["REDIS_URL"]!)
        let id = try await client.submit("/v1/orders", ShopTests.order(user, [(widget, 1)]))
        // The OrderPlaced inventory has not read yet is replaced by a copy whose payload is
        // poison (items is not a list), as a producer bug would write it.
        // orders.events is partitioned by order: the order's events are in its partition.
        let topology = try Choreo.Topology.load(path: system.topologyPath, environment: system.environment)
        let partition = topology.service("orders")!.eventStream(data: #"{"orderId":"\#(id)"}"#, correlation: id)
        let placed = try await eventuallyValue("the OrderPlaced on its partition of orders.events", timeout: 20) {
            try redis.xrange(partition).last { $0["type"] == "OrderPlaced" && $0["correlation"] == id }
        }
        try redis.command(["XDEL", partition, placed.id])
        let poisoned = placed.fields.map {
            $0.name == "data" ? StreamField("data", #"{"orderId":"\#(id)","items":7}"#) : $0
        }
        try redis.xadd(partition, fields: poisoned)
        try system.startPool("inventory")
        // Dead-lettering marks the command `dead` first; the deadline then settles the saga.
        try await eventually("the command settled by the deadline", timeout: 30) {
            try await client.outcome(id, timeout: 1).status == "failed"
        }
        let final = try await client.outcome(id, timeout: 1)
        #expect(final.error?["code"] as? String == "timeout", "\(final.reply.body)")
        #expect(try await client.get("/v1/orders/\(id)").json["status"] as? String == "cancelled")
        let dead = try redis.xrange("{inventory}.dead").filter { $0["correlation"] == id }
        #expect(dead.count == 1)
        #expect(try await ShopTests.number(client, "/v1/products/\(widget)", "stock") == 3)
        #expect(try await ShopTests.number(client, "/v1/accounts/\(user)", "balanceCents") == 10_000)
        try await ShopTests.expectCheckerGreen(system)
    }
}
