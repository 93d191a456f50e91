// LoadRun: drives the reference system through its gateway: users, products and money set up,
// then orders offered at a fixed rate (open loop: each order starts at its scheduled time, and
// its latency counts from then, so a stall is not hidden) with random outcomes, each followed to
// its saga's verdict. Reports outcomes, throughput and submit-to-result latency percentiles.

import Foundation
import Histogram

/// A load run of the reference system.
public struct LoadRun: Sendable {
    /// What to offer.
    public struct Plan: Sendable {
        /// Orders to offer.
        public var orders = 2000
        /// Orders offered per second.
        public var rate = 200.0
        /// Users to create (their money decides some orders' fate).
        public var users = 40
        /// Products to create (their stock decides others').
        public var products = 20
        /// Share of orders that name a product that does not exist.
        public var unknownProductShare = 0.02
        /// Longest wait for one order's verdict.
        public var verdictTimeout = 60.0
        /// How long a refused or failed submit is retried (same Idempotency-Key).
        public var submitRetry = 0.0

        /// The default plan.
        public init() {}
    }

    /// What happened.
    public struct Report: Codable, Sendable {
        public var offered = 0
        public var accepted = 0
        public var confirmed = 0
        public var cancelled: [String: Int] = [:]
        public var failed: [String: Int] = [:]
        public var undecided = 0
        /// Orders whose submit was refused or failed (never accepted: not a loss).
        public var notAccepted = 0
        /// Orders whose command was dead-lettered.
        public var dead = 0
        public var errors = 0
        public var firstErrors: [String] = []
        public var seconds = 0.0
        public var ordersPerSecond = 0.0
        /// Submit-to-verdict latency in milliseconds, from each order's scheduled start.
        public var latencyMs: [String: Double] = [:]
    }

    let client: ShopClient
    let plan: Plan
    let log: @Sendable (String) -> Void
    /// Live counts while the orders are offered (``LoadProgress``).
    public let progress = LoadProgress()

    /// A run against the gateway `client` talks to.
    public init(client: ShopClient, plan: Plan, log: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.client = client
        self.plan = plan
        self.log = log
    }

    struct Fixture: Sendable {
        var users: [String]
        var products: [String]
    }

    /// Sets up, offers the orders, and reports.
    public func run() async throws -> Report {
        let fixture = try await setUp()
        log(
            "load: \(fixture.users.count) users, \(fixture.products.count) products; offering \(plan.orders) orders at \(plan.rate)/s"
        )
        return try await offer(fixture)
    }

    func setUp() async throws -> Fixture {
        let tag = String(UInt64.random(in: 0..<UInt64.max), radix: 36)
        let users = try await concurrently(0..<plan.users) { index in
            let result = try await client.succeed(
                "/v1/users", "{\"email\":\"load-\(tag)-\(index)@example.com\",\"name\":\"Load \(index)\"}")
            return result["id"] as! String
        }
        let products = try await concurrently(0..<plan.products) { index in
            let price = Int.random(in: 100...5_000)
            let stock = Int.random(in: 100...1_000)
            let result = try await client.succeed(
                "/v1/products",
                "{\"sku\":\"load-\(tag)-\(index)\",\"name\":\"Load product \(index)\",\"priceCents\":\(price),\"stock\":\(stock)}"
            )
            return result["id"] as! String
        }
        // Accounts and profiles are opened from UserCreated: wait for them, then fund most users.
        _ = try await concurrently(users.indices) { index in
            let user = users[index]
            let deadline = Date().addingTimeInterval(30)
            while true {
                let account = try await client.get("/v1/accounts/\(user)").status
                let profile = try await client.get("/v1/users/\(user)/orders").status
                if account == 200 && profile == 200 { break }
                guard Date() < deadline else { throw ShopClient.ClientError("user \(user) never got an account") }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            if index % 5 != 0 {
                _ = try await client.succeed(
                    "/v1/accounts/\(user)/deposits", "{\"amountCents\":\(Int.random(in: 10_000...2_000_000))}")
            }
            return user
        }
        return Fixture(users: users, products: products)
    }

    func offer(_ fixture: Fixture) async throws -> Report {
        let start = Date()
        progress.started()
        let interval = 1 / plan.rate
        let outcomes = try await withThrowingTaskGroup(of: (String, Double?, String?).self) { group in
            for index in 0..<plan.orders {
                let scheduled = start.addingTimeInterval(Double(index) * interval)
                let wait = scheduled.timeIntervalSinceNow
                if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
                let body = orderBody(fixture)
                group.addTask { await place(body, scheduled: scheduled) }
            }
            var outcomes: [(String, Double?, String?)] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var report = Report()
        report.seconds = Date().timeIntervalSince(start)
        report.offered = plan.orders
        var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        for (kind, latency, error) in outcomes {
            if let latency { histogram.record(UInt64(max(latency, 0) * 1000)) }
            switch kind {
            case "confirmed": report.confirmed += 1
            // A timeout is the saga's deadline: the order is cancelled, as on a refusal.
            case "stock_rejected", "payment_failed", "timeout": report.cancelled[kind, default: 0] += 1
            case "undecided": report.undecided += 1
            case "not accepted": report.notAccepted += 1
            case "dead": report.dead += 1
            case "error": report.errors += 1
            default: report.failed[kind, default: 0] += 1
            }
            if !["error", "not accepted"].contains(kind) { report.accepted += 1 }
            if let error, report.firstErrors.count < 5 { report.firstErrors.append(error) }
        }
        report.ordersPerSecond = Double(report.accepted - report.undecided) / report.seconds
        for (name, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            report.latencyMs[name] = Double(histogram.valueAtPercentile(quantile * 100)) / 1000
        }
        report.latencyMs["max"] = Double(histogram.max) / 1000
        return report
    }

    /// Places one order as a careful client does: the submit is retried (same Idempotency-Key,
    /// so a submit that landed is not placed twice) while the gateway is unreachable or
    /// refuses, for up to `submitRetry` seconds; the result is polled until it is terminal,
    /// retrying through errors, for up to the verdict timeout.
    func place(_ body: String, scheduled: Date) async -> (String, Double?, String?) {
        let key = "load-" + UUID().uuidString
        progress.offered()
        let submitDeadline = Date().addingTimeInterval(plan.submitRetry)
        var id: String?
        var lastError = ""
        while id == nil {
            do {
                id = try await client.submit("/v1/orders", body, idempotencyKey: key)
            } catch {
                lastError = "\(error)"
                guard Date() < submitDeadline else { return ("not accepted", nil, lastError) }
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
        }
        progress.accepted()
        let deadline = Date().addingTimeInterval(plan.verdictTimeout)
        while Date() < deadline {
            do {
                let outcome = try await client.outcome(id!, timeout: min(30, deadline.timeIntervalSinceNow))
                let latency = Date().timeIntervalSince(scheduled) * 1000
                let code = (outcome.error?["code"] as? String) ?? ""
                if ["succeeded", "failed"].contains(outcome.status) { progress.decided(latencyMs: latency) }
                switch outcome.status {
                case "succeeded": return ("confirmed", latency, nil)
                case "failed": return (code.isEmpty ? "failed" : code, latency, nil)
                case "dead": return ("dead", latency, "order \(id!) dead: \(outcome.reply.body)")
                default:
                    lastError = "order \(id!) is \(outcome.status) (HTTP \(outcome.reply.status))"
                    if outcome.reply.status >= 400 { try? await Task.sleep(nanoseconds: 200_000_000) }
                }
            } catch {
                lastError = "\(error)"
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
        }
        return ("undecided", nil, "order \(id!) undecided after \(Int(plan.verdictTimeout)) s: \(lastError)")
    }

    func orderBody(_ fixture: Fixture) -> String {
        let count = Int.random(in: 1...3)
        var items: [String] = []
        for _ in 0..<count {
            let product =
                Double.random(in: 0..<1) < plan.unknownProductShare
                ? UUID().uuidString.lowercased() : fixture.products.randomElement()!
            items.append("{\"productId\":\"\(product)\",\"quantity\":\(Int.random(in: 1...3))}")
        }
        return "{\"userId\":\"\(fixture.users.randomElement()!)\",\"items\":[\(items.joined(separator: ","))]}"
    }

    func concurrently<C: Collection & Sendable, T: Sendable>(
        _ items: C, width: Int = 16, _ body: @escaping @Sendable (C.Element) async throws -> T
    ) async throws -> [T] where C.Element: Sendable {
        var results: [T] = []
        var iterator = Array(items).makeIterator()
        try await withThrowingTaskGroup(of: T.self) { group in
            for _ in 0..<width {
                guard let item = iterator.next() else { break }
                group.addTask { try await body(item) }
            }
            for try await result in group {
                results.append(result)
                if let item = iterator.next() { group.addTask { try await body(item) } }
            }
        }
        return results
    }
}
