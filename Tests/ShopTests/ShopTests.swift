import AsyncHTTPClient
import Choreo
import ChoreoTesting
import Foundation
import Postgres
import Shop
import Testing

/// End-to-end tests of the reference system: the gateway and all four worker pools running as
/// real processes (`choreo up`), driven over HTTP.
@Suite("Reference system end to end", .timeLimit(.minutes(5)))
struct ShopTests {
    /// A client of the shared system.
    static func client() async throws -> ShopClient {
        ShopClient(base: try await ShopSystem.shared.value.base)
    }

    /// The scenarios that need only the gateway, run here on the standalone server and by
    /// ClusterShopTests on the Redis Cluster.
    enum Scenario: String, CaseIterable, Sendable {
        case happyPath, insufficientFunds, outOfStock, rightAfterCreatingTheUser, unknownUserAndProduct
        case duplicateEmail, lastItem, openOrderAndCompensation, graphQL

        /// Runs the scenario against the system behind `client`.
        func run(_ client: ShopClient) async throws {
            switch self {
            case .happyPath: try await ShopTests.happyPath(client)
            case .insufficientFunds: try await ShopTests.insufficientFunds(client)
            case .outOfStock: try await ShopTests.outOfStock(client)
            case .rightAfterCreatingTheUser: try await ShopTests.rightAfterCreatingTheUser(client)
            case .unknownUserAndProduct: try await ShopTests.unknownUserAndProduct(client)
            case .duplicateEmail: try await ShopTests.duplicateEmail(client)
            case .lastItem: try await ShopTests.lastItem(client)
            case .openOrderAndCompensation: try await ShopTests.openOrderAndCompensation(client)
            case .graphQL: try await ShopTests.graphQL(client)
            }
        }
    }

    /// A user whose profile (orders) and account (payments) exist, funded with `funds` cents.
    static func user(_ client: ShopClient, funds: Int) async throws -> String {
        let user = try await client.succeed(
            "/v1/users", "{\"email\":\"\(UUID().uuidString.prefix(12))@example.com\",\"name\":\"Test user\"}")
        let id = user["id"] as! String
        try await eventually("account and profile of \(id)", timeout: 20) { try await ready(client, id) }
        if funds > 0 { _ = try await client.succeed("/v1/accounts/\(id)/deposits", "{\"amountCents\":\(funds)}") }
        return id
    }

    /// Whether payments has the user's account and orders the user's profile.
    static func ready(_ client: ShopClient, _ user: String) async throws -> Bool {
        let account = try await client.get("/v1/accounts/\(user)").status
        let profile = try await client.get("/v1/users/\(user)/orders").status
        return account == 200 && profile == 200
    }

    static func product(_ client: ShopClient, price: Int, stock: Int) async throws -> String {
        let product = try await client.succeed(
            "/v1/products",
            "{\"sku\":\"\(UUID().uuidString)\",\"name\":\"Widget\",\"priceCents\":\(price),\"stock\":\(stock)}")
        return product["id"] as! String
    }

    static func order(_ userId: String, _ items: [(String, Int)]) -> String {
        let lines = items.map { "{\"productId\":\"\($0.0)\",\"quantity\":\($0.1)}" }
        return "{\"userId\":\"\(userId)\",\"items\":[\(lines.joined(separator: ","))]}"
    }

    static func number(_ client: ShopClient, _ path: String, _ field: String) async throws -> Int {
        let reply = try await client.get(path)
        guard reply.status == 200, let value = reply.json[field] as? Int else {
            throw ShopClient.ClientError("GET \(path): \(reply.status) \(reply.body)")
        }
        return value
    }

    @Test("happy path: the order is confirmed, stock and balance move by the catalogue price")
    func happyPath() async throws { try await Self.happyPath(Self.client()) }

    static func happyPath(_ client: ShopClient) async throws {
        let user = try await Self.user(client, funds: 10_000)
        let widget = try await Self.product(client, price: 250, stock: 5)
        let gadget = try await Self.product(client, price: 1_000, stock: 2)
        let outcome = try await client.run("/v1/orders", Self.order(user, [(widget, 2), (gadget, 1)]))
        #expect(outcome.status == "succeeded", "\(outcome.reply.body)")
        #expect(outcome.result?["status"] as? String == "confirmed")
        #expect(outcome.result?["totalCents"] as? Int == 1_500)
        #expect(try await Self.number(client, "/v1/products/\(widget)", "stock") == 3)
        #expect(try await Self.number(client, "/v1/products/\(gadget)", "stock") == 1)
        #expect(try await Self.number(client, "/v1/accounts/\(user)", "balanceCents") == 8_500)
        let order = try await client.get("/v1/orders/\(outcome.id)")
        #expect(order.status == 200)
        #expect(order.json["status"] as? String == "confirmed")
    }

    @Test("insufficient funds: the order is cancelled and its stock released")
    func insufficientFunds() async throws { try await Self.insufficientFunds(Self.client()) }

    static func insufficientFunds(_ client: ShopClient) async throws {
        let user = try await Self.user(client, funds: 100)
        let widget = try await Self.product(client, price: 250, stock: 5)
        let outcome = try await client.run("/v1/orders", Self.order(user, [(widget, 2)]))
        #expect(outcome.status == "failed")
        #expect(outcome.error?["code"] as? String == "payment_failed")
        #expect((outcome.error?["reason"] as? String ?? "").contains("insufficient funds"))
        try await eventually("stock released", timeout: 10) {
            try await Self.number(client, "/v1/products/\(widget)", "stock") == 5
        }
        #expect(try await Self.number(client, "/v1/accounts/\(user)", "balanceCents") == 100)
        #expect(try await client.get("/v1/orders/\(outcome.id)").json["status"] as? String == "cancelled")
    }

    @Test("choreo trace shows a cancelled order's saga in order, compensations included")
    func traceOfCancelledOrder() async throws {
        let system = try await ShopSystem.shared.value
        let client = try await Self.client()
        let user = try await Self.user(client, funds: 100)
        let widget = try await Self.product(client, price: 250, stock: 5)
        let outcome = try await client.run("/v1/orders", Self.order(user, [(widget, 2)]))
        #expect(outcome.status == "failed")
        var types: [String] = []
        var run: CommandRun?
        try await eventually("the compensation in the trace", timeout: 20) {
            run = try await runChoreo(
                ["trace", outcome.id, "--json", "--topology", system.topologyPath], environment: system.environment)
            let steps = (run?.json as? [String: Any])?["steps"] as? [[String: Any]] ?? []
            types = steps.compactMap { $0["type"] as? String }
            return types.contains("StockReleased")
        }
        #expect(run?.status == 0)
        #expect(
            types == [
                "PlaceOrder", "OrderPlaced", "StockReserved", "PaymentFailed", "OrderCancelled", "StockReleased",
            ],
            "\(types)")
        let steps = (run?.json as? [String: Any])?["steps"] as? [[String: Any]] ?? []
        let placed = steps.first { $0["type"] as? String == "OrderPlaced" }
        let handlings = placed?["handlings"] as? [[String: Any]] ?? []
        let inventory = handlings.first { $0["service"] as? String == "inventory" }
        #expect(inventory?["outcome"] as? String == "handled")
        let text = try await runChoreo(
            ["trace", outcome.id, "--topology", system.topologyPath], environment: system.environment)
        #expect(text.output.contains("PlaceOrder is failed"))
        #expect(text.output.contains("insufficient funds"))
    }

    @Test("the request's W3C trace id is carried through every message of the saga")
    func traceparentPropagation() async throws {
        let system = try await ShopSystem.shared.value
        let client = try await Self.client()
        let user = try await Self.user(client, funds: 10_000)
        let widget = try await Self.product(client, price: 100, stock: 5)
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let reply = try await client.request(
            .POST, "/v1/orders", body: Self.order(user, [(widget, 1)]),
            headers: [("traceparent", "00-\(trace)-00f067aa0ba902b7-01")])
        let id = try #require(reply.json["id"] as? String)
        #expect(try await client.outcome(id).status == "succeeded")
        let run = try await runChoreo(
            ["trace", id, "--json", "--topology", system.topologyPath], environment: system.environment)
        let steps = (run.json as? [String: Any])?["steps"] as? [[String: Any]] ?? []
        #expect(steps.count >= 5, "\(run.output)")
        let parents = steps.compactMap { $0["traceparent"] as? String }
        #expect(parents.count == steps.count)
        #expect(parents.allSatisfy { $0.split(separator: "-")[1] == Substring(trace) }, "\(parents)")
        #expect(Set(parents).count == parents.count, "each message has its own span id")
    }

    @Test("out of stock: the order is cancelled, nothing is charged")
    func outOfStock() async throws { try await Self.outOfStock(Self.client()) }

    static func outOfStock(_ client: ShopClient) async throws {
        let user = try await Self.user(client, funds: 10_000)
        let widget = try await Self.product(client, price: 250, stock: 1)
        let outcome = try await client.run("/v1/orders", Self.order(user, [(widget, 2)]))
        #expect(outcome.status == "failed")
        #expect(outcome.error?["code"] as? String == "stock_rejected")
        #expect((outcome.error?["reason"] as? String ?? "").contains("not enough stock"))
        #expect(try await Self.number(client, "/v1/products/\(widget)", "stock") == 1)
        #expect(try await Self.number(client, "/v1/accounts/\(user)", "balanceCents") == 10_000)
    }

    @Test("a deposit and an order sent right after creating the user, before the services saw it, succeed")
    func rightAfterCreatingTheUser() async throws { try await Self.rightAfterCreatingTheUser(Self.client()) }

    static func rightAfterCreatingTheUser(_ client: ShopClient) async throws {
        let widget = try await Self.product(client, price: 100, stock: 5)
        let created = try await client.run(
            "/v1/users", "{\"email\":\"\(UUID().uuidString.prefix(12))@example.com\",\"name\":\"Racer\"}")
        let user = try #require(created.result?["id"] as? String)
        // No waiting for the account or the profile: the deposit and the order may overtake
        // UserCreated; the services see them again shortly instead of refusing them.
        let deposited = try await client.run("/v1/accounts/\(user)/deposits", "{\"amountCents\":500}")
        #expect(deposited.status == "succeeded", "\(deposited.reply.body)")
        let order = try await client.run("/v1/orders", Self.order(user, [(widget, 2)]))
        #expect(order.status == "succeeded", "\(order.reply.body)")
        #expect(try await Self.number(client, "/v1/accounts/\(user)", "balanceCents") == 300)
    }

    @Test("unknown user and unknown product fail with reasons")
    func unknownUserAndProduct() async throws { try await Self.unknownUserAndProduct(Self.client()) }

    static func unknownUserAndProduct(_ client: ShopClient) async throws {
        let widget = try await Self.product(client, price: 250, stock: 5)
        let stranger = UUID().uuidString.lowercased()
        let noUser = try await client.run("/v1/orders", Self.order(stranger, [(widget, 1)]))
        #expect(noUser.status == "failed")
        #expect(noUser.error?["code"] as? String == "unknown_user")
        #expect((noUser.error?["reason"] as? String ?? "").contains(stranger))

        let user = try await Self.user(client, funds: 10_000)
        let missing = UUID().uuidString.lowercased()
        let noProduct = try await client.run("/v1/orders", Self.order(user, [(widget, 1), (missing, 1)]))
        #expect(noProduct.status == "failed")
        #expect((noProduct.error?["reason"] as? String ?? "") == "unknown product \(missing)")
        #expect(try await Self.number(client, "/v1/products/\(widget)", "stock") == 5)
    }

    @Test("a duplicate email (any case) is a failed result with a clear reason")
    func duplicateEmail() async throws { try await Self.duplicateEmail(Self.client()) }

    static func duplicateEmail(_ client: ShopClient) async throws {
        let email = "dup-\(UUID().uuidString.prefix(8))@example.com"
        let first = try await client.run("/v1/users", "{\"email\":\"\(email)\",\"name\":\"One\"}")
        #expect(first.status == "succeeded")
        let second = try await client.run("/v1/users", "{\"email\":\"\(email.uppercased())\",\"name\":\"Two\"}")
        #expect(second.status == "failed")
        #expect(second.error?["code"] as? String == "duplicate_email")
        let invalid = try await client.run("/v1/users", "{\"email\":\"not-an-email\",\"name\":\"Three\"}")
        #expect(invalid.error?["code"] as? String == "invalid_email")
        let user = try await client.get("/v1/users/\(first.id)")
        #expect(user.json["email"] as? String == email)
        #expect(try await client.get("/v1/users/\(UUID().uuidString.lowercased())").status == 404)
    }

    @Test("concurrent orders for the last item: exactly one wins")
    func lastItem() async throws { try await Self.lastItem(Self.client()) }

    static func lastItem(_ client: ShopClient) async throws {
        let widget = try await Self.product(client, price: 300, stock: 1)
        var users: [String] = []
        for _ in 0..<6 { users.append(try await Self.user(client, funds: 1_000)) }
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for user in users {
                group.addTask { try await client.submit("/v1/orders", Self.order(user, [(widget, 1)])) }
            }
            var ids: [String] = []
            for try await id in group { ids.append(id) }
            return ids
        }
        var statuses: [String] = []
        for id in ids { statuses.append(try await client.outcome(id).status) }
        #expect(statuses.filter { $0 == "succeeded" }.count == 1, "\(statuses)")
        #expect(statuses.filter { $0 == "failed" }.count == 5, "\(statuses)")
        #expect(try await Self.number(client, "/v1/products/\(widget)", "stock") == 0)
    }

    @Test("an open order takes items, checks out, and a confirmed order cancelled is refunded and restocked")
    func openOrderAndCompensation() async throws { try await Self.openOrderAndCompensation(Self.client()) }

    static func openOrderAndCompensation(_ client: ShopClient) async throws {
        let user = try await Self.user(client, funds: 5_000)
        let widget = try await Self.product(client, price: 400, stock: 10)
        let open = try await client.run(
            "/v1/orders", "{\"userId\":\"\(user)\",\"items\":[],\"checkout\":false}")
        #expect(open.status == "succeeded")
        #expect(open.result?["status"] as? String == "open")
        let added = try await client.run(
            "/v1/orders/\(open.id)/items", "{\"productId\":\"\(widget)\",\"quantity\":3}")
        #expect(added.status == "succeeded")
        #expect((added.result?["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 3)
        let checkout = try await client.run("/v1/orders/\(open.id)/checkout", "{}")
        #expect(checkout.status == "succeeded", "\(checkout.reply.body)")
        #expect(checkout.result?["totalCents"] as? Int == 1_200)
        let late = try await client.run("/v1/orders/\(open.id)/items", "{\"productId\":\"\(widget)\",\"quantity\":1}")
        #expect(late.error?["code"] as? String == "order_not_open")
        #expect(try await Self.number(client, "/v1/accounts/\(user)", "balanceCents") == 3_800)

        let cancel = try await client.request(.POST, "/v1/orders/\(open.id)/cancel")
        #expect(cancel.status == 202)
        let cancelled = try await client.outcome(cancel.json["id"] as! String)
        #expect(cancelled.result?["status"] as? String == "cancelled")
        try await eventually("refund and restock", timeout: 10) {
            let balance = try await Self.number(client, "/v1/accounts/\(user)", "balanceCents")
            let stock = try await Self.number(client, "/v1/products/\(widget)", "stock")
            return balance == 5_000 && stock == 10
        }
    }

    @Test("GraphQL: queries and mutations of the seed's schema")
    func graphQL() async throws { try await Self.graphQL(Self.client()) }

    static func graphQL(_ client: ShopClient) async throws {
        let email = "gql-\(UUID().uuidString.prefix(8))@example.com"
        let created = try await client.graphQL(
            "mutation($e: String!) { createUser(email: $e, name: \"Graph\") { id email name status } }",
            variables: ["e": email])
        let user = (created["data"] as? [String: Any])?["createUser"] as? [String: Any]
        let id = try #require(user?["id"] as? String, "\(created)")
        #expect(user?["email"] as? String == email)

        let duplicate = try await client.graphQL(
            "mutation($e: String!) { createUser(email: $e, name: \"Again\") { id } }", variables: ["e": email])
        let errors = duplicate["errors"] as? [[String: Any]]
        #expect((errors?.first?["message"] as? String ?? "").contains("already exists"), "\(duplicate)")

        let fetched = try await client.graphQL("query($id: String!) { user(id: $id) { name } }", variables: ["id": id])
        #expect(((fetched["data"] as? [String: Any])?["user"] as? [String: Any])?["name"] as? String == "Graph")

        try await eventually("account and profile", timeout: 20) { try await Self.ready(client, id) }
        _ = try await client.succeed("/v1/accounts/\(id)/deposits", "{\"amountCents\":10000}")
        let widget = try await Self.product(client, price: 700, stock: 4)
        let opened = try await client.graphQL(
            "mutation($u: String!) { createOrder(userId: $u, checkout: false) { id status } }", variables: ["u": id])
        let orderID = try #require(
            ((opened["data"] as? [String: Any])?["createOrder"] as? [String: Any])?["id"] as? String, "\(opened)")
        let added = try await client.graphQL(
            "mutation($o: String!, $p: String!) { addItemToOrder(orderId: $o, productId: $p, quantity: 2) { status items { quantity } } }",
            variables: ["o": orderID, "p": widget])
        let addedOrder = (added["data"] as? [String: Any])?["addItemToOrder"] as? [String: Any]
        #expect(addedOrder?["status"] as? String == "open", "\(added)")

        let placed = try await client.graphQL(
            "mutation($u: String!, $p: String!) { createOrder(userId: $u, items: [{productId: $p, quantity: 1}]) { status totalCents } }",
            variables: ["u": id, "p": widget])
        let order = (placed["data"] as? [String: Any])?["createOrder"] as? [String: Any]
        #expect(order?["status"] as? String == "confirmed", "\(placed)")
        #expect(order?["totalCents"] as? Int == 700)

        let listed = try await client.graphQL(
            "query($u: String!) { userOrders(userId: $u) { id status } users { id } }", variables: ["u": id])
        let orders = (listed["data"] as? [String: Any])?["userOrders"] as? [[String: Any]]
        #expect(orders?.count == 2, "\(listed)")
    }

    @Test("each service's login role is denied another service's schema")
    func leastPrivilege() async throws {
        let system = try await ShopSystem.shared.value
        let orders = try PostgresConnection(url: system.serviceDatabaseURL("orders"))
        #expect(try orders.query("SELECT count(*) AS n FROM orders.orders").first != nil)
        do {
            _ = try orders.query("SELECT count(*) FROM users.users")
            Issue.record("the orders role read the users schema")
        } catch let error as PostgresError {
            #expect(error.sqlState == "42501", "\(error)")
        }
        do {
            _ = try orders.query("CREATE TABLE orders.sneaky (x int)")
            Issue.record("the orders role created a table")
        } catch let error as PostgresError {
            #expect(error.sqlState == "42501", "\(error)")
        }
    }

    @Test("a load run of 2,000 orders with random outcomes ends with the checker green")
    func loadRun() async throws {
        let system = try await ShopSystem.shared.value
        let client = ShopClient(base: system.base)
        var plan = LoadRun.Plan()
        plan.orders = 2_000
        plan.rate = 150
        plan.users = 30
        plan.products = 15
        let report = try await LoadRun(client: client, plan: plan) { _ in }.run()
        #expect(report.errors == 0, "\(report.firstErrors)")
        #expect(report.undecided == 0)
        #expect(report.accepted == 2_000)
        #expect(report.confirmed > 0)
        try await Self.expectCheckerGreen(system)
    }

    /// Waits (up to 60 s) for `choreo check`'s invariants to hold on `system`'s database.
    static func expectCheckerGreen(_ system: ShopSystem) async throws {
        let topology = try Choreo.Topology.load(path: system.topologyPath, environment: system.environment)
        let checker = try ConsistencyChecker(topology: topology, sagaTimeout: 60)
        let connection = try PostgresConnection(url: topology.postgresURL)
        let result = try await eventuallyValue("the checker to be green", timeout: 60) {
            () -> ConsistencyChecker.Report? in
            let report = try checker.check(connection)
            return report.ok ? report : nil
        }
        #expect(result.ok)
    }
}
