// OrdersTests: the order saga's decisions in the orders service: each command and each verdict
// event folded into the order, through the handler harness.

import Choreo
import ChoreoTesting
import Orders
import Postgres
import ShopContracts
import Testing

@Suite("Orders handlers")
struct OrdersTests {
    let harness: HandlerHarness
    let user = Envelope.newID()
    let item = OrderItem(productId: Envelope.newID(), quantity: 2)

    init() throws {
        harness = try HandlerHarness(Orders.service())
        try harness.handle(UserCreated(userId: user, email: "a@example.com", name: "A"))
    }

    /// Places an order; returns its id (the command id).
    func place() throws -> String {
        let id = Envelope.newID()
        let placed = try harness.handle(PlaceOrder(userId: user, items: [item]), id: id)
        #expect(placed.eventTypes == ["OrderPlaced"])
        #expect(placed.result == nil, "the result of a checkout is the saga's verdict")
        return id
    }

    func status(_ order: String) throws -> String? {
        try harness.query("SELECT status FROM orders WHERE id = $1::uuid", [order]).first?.decode(String.self, "status")
    }

    @Test("UserCreated makes a profile once: the second is UserProfileCreationFailed")
    func profiles() throws {
        let again = try harness.handle(UserCreated(userId: user, email: "a@example.com", name: "A"))
        #expect(try again.event(UserProfileCreationFailed.self)?.error == "a profile already exists")
        let other = Envelope.newID()
        let created = try harness.handle(UserCreated(userId: other, email: "b@example.com", name: "B"))
        #expect(try created.event(UserProfileCreated.self) == UserProfileCreated(userId: other))
    }

    @Test("PlaceOrder needs a known user, positive quantities and items")
    func placeOrderChecks() throws {
        #expect(try harness.handle(PlaceOrder(userId: "nobody", items: [item])).rejectionCode == "unknown_user")
        let zero = OrderItem(productId: Envelope.newID(), quantity: 0)
        #expect(try harness.handle(PlaceOrder(userId: user, items: [zero])).rejectionCode == "invalid_quantity")
        #expect(try harness.handle(PlaceOrder(userId: user, items: [])).rejectionCode == "empty_order")
        let order = try place()
        #expect(try status(order) == "pending")
        let placed = try #require(try harness.query("SELECT doc::text AS doc FROM orders").first)
        #expect(try placed.decodeJSON(Order.self, "doc").items == [item])
    }

    @Test("an order that overtakes the user's profile is not ready yet, then placed once the profile exists")
    func orderBeforeProfile() throws {
        let newcomer = Envelope.newID()
        let id = Envelope.newID()
        let early = try harness.handle(PlaceOrder(userId: newcomer, items: [item]), id: id)
        guard case .deferred = early.outcome else {
            Issue.record("expected a deferral, got \(early.outcome)")
            return
        }
        #expect(early.events.isEmpty)
        #expect(try status(id) == nil)
        try harness.handle(UserCreated(userId: newcomer, email: "n@example.com", name: "N"))
        let placed = try harness.deliverScheduled(id)
        #expect(placed.eventTypes == ["OrderPlaced"])
        #expect(try status(id) == "pending")
    }

    @Test("PaymentSucceeded confirms a pending order with the charged lines; the verdict is the command's result")
    func paymentSucceededConfirms() throws {
        let order = try place()
        let lines = [OrderLine(productId: item.productId, quantity: 2, unitPriceCents: 150)]
        let confirmed = try harness.handle(
            PaymentSucceeded(orderId: order, userId: user, amountCents: 300, lines: lines), correlation: order)
        #expect(confirmed.eventTypes == ["OrderConfirmed"])
        let result = try #require(try confirmed.succeeded(Order.self))
        #expect(result.status == .confirmed)
        #expect(result.lines == lines)
        #expect(result.totalCents == 300)
        #expect(confirmed.result?.type == "OrderConfirmed")
        // A late verdict for a settled order changes nothing.
        let late = try harness.handle(StockRejected(orderId: order, userId: user, reason: "late"), correlation: order)
        #expect(late.events.isEmpty)
        #expect(late.result == nil)
        #expect(try status(order) == "confirmed")
    }

    @Test("StockRejected and PaymentFailed cancel a pending order; the result is failed with the saga's code")
    func rejectionsCancel() throws {
        let outOfStock = try place()
        let rejected = try harness.handle(
            StockRejected(orderId: outOfStock, userId: user, reason: "not enough stock"), correlation: outOfStock)
        #expect(rejected.eventTypes == ["OrderCancelled"])
        #expect(rejected.rejectionCode == "stock_rejected")
        #expect(rejected.rejectionReason == "not enough stock")
        #expect(try status(outOfStock) == "cancelled")

        let broke = try place()
        let failed = try harness.handle(
            PaymentFailed(orderId: broke, userId: user, amountCents: 300, lines: [], reason: "insufficient funds"),
            correlation: broke)
        #expect(try failed.event(OrderCancelled.self)?.reason == "insufficient funds")
        #expect(failed.rejectionCode == "payment_failed")
    }

    @Test("an open order takes items and checks out; a pending one cannot be cancelled; a confirmed one can")
    func openOrderLifecycle() throws {
        let order = Envelope.newID()
        let opened = try harness.handle(PlaceOrder(userId: user, items: [], checkout: false), id: order)
        #expect(try opened.succeeded(Order.self)?.status == .open)
        #expect(opened.result?.type == "OrderCreated")
        let added = try harness.handle(AddItemToOrder(id: order, productId: item.productId, quantity: 1))
        #expect(try added.succeeded(Order.self)?.items == [OrderItem(productId: item.productId, quantity: 1)])
        let checkout = try harness.handle(CheckoutOrder(id: order), correlation: order)
        #expect(checkout.eventTypes == ["OrderPlaced"])
        #expect(
            try harness.handle(AddItemToOrder(id: order, productId: item.productId, quantity: 1)).rejectionCode
                == "order_not_open")
        #expect(try harness.handle(CancelOrder(id: order)).rejectionCode == "saga_in_progress")
        try harness.handle(
            PaymentSucceeded(orderId: order, userId: user, amountCents: 0, lines: []), correlation: order)
        let cancelled = try harness.handle(CancelOrder(id: order))
        #expect(cancelled.eventTypes == ["OrderCancelled"])
        #expect(try cancelled.succeeded(Order.self)?.status == .cancelled)
        #expect(try harness.handle(CancelOrder(id: order)).rejectionCode == "already_cancelled")
    }
}

@Suite("Orders: saga deadlines")
struct OrderDeadlineTests {
    let harness: HandlerHarness
    let user = Envelope.newID()
    let item = OrderItem(productId: Envelope.newID(), quantity: 2)
    let lines: [OrderLine]

    init() throws {
        var settings = Orders.Settings()
        settings.deadline = 2
        harness = try HandlerHarness(Orders.service(settings: settings))
        try harness.handle(UserCreated(userId: user, email: "a@example.com", name: "A"))
        lines = [OrderLine(productId: item.productId, quantity: 2, unitPriceCents: 150)]
    }

    func place() throws -> String {
        let id = Envelope.newID()
        try harness.handle(PlaceOrder(userId: user, items: [item]), id: id)
        return id
    }

    func status(_ order: String) throws -> String? {
        try harness.query("SELECT status FROM orders WHERE id = $1::uuid", [order]).first?.decode(String.self, "status")
    }

    @Test("placing an order schedules its deadline, in the saga, after saga_deadline")
    func placingSchedules() throws {
        let before = Envelope.nowMilliseconds()
        let order = try place()
        let deadline = try #require(try harness.scheduled().first)
        #expect(deadline.id == "deadline-\(order)")
        #expect(deadline.type == "OrderDeadline")
        #expect(deadline.stream == harness.definition.commandStream)
        #expect(deadline.correlation == order)
        #expect(deadline.dueAt >= before + 2000 && deadline.dueAt < before + 10_000)
        // An open order has no deadline until it is checked out.
        let open = Envelope.newID()
        try harness.handle(PlaceOrder(userId: user, items: [item], checkout: false), id: open)
        #expect(try harness.scheduled().count == 1)
        try harness.handle(CheckoutOrder(id: open), correlation: open)
        #expect(try harness.scheduled().map(\.id).sorted() == ["deadline-\(open)", "deadline-\(order)"].sorted())
    }

    @Test("the deadline cancels a still-pending order with reason timeout; the command fails with code timeout")
    func deadlineCancelsPending() throws {
        let order = try place()
        let fired = try harness.deliverScheduled("deadline-\(order)")
        #expect(fired.eventTypes == ["OrderCancelled"])
        #expect(try fired.event(OrderCancelled.self)?.reason?.hasPrefix("timeout") == true)
        #expect(fired.rejectionCode == "timeout")
        #expect(fired.result?.type == "OrderCancelled")
        #expect(try status(order) == "cancelled")
    }

    @Test("a verdict first cancels the deadline; a deadline that fires anyway is ignored")
    func verdictCancelsDeadline() throws {
        let order = try place()
        try harness.handle(
            PaymentSucceeded(orderId: order, userId: user, amountCents: 300, lines: lines), correlation: order)
        #expect(try harness.scheduled().isEmpty)
        let late = try harness.handle(OrderDeadline(orderId: order), correlation: order)
        #expect(late.outcome == .handled)
        #expect(late.events.isEmpty)
        #expect(late.result == nil)
        #expect(try status(order) == "confirmed")
    }

    @Test("a payment verdict after the deadline announces the cancellation again; a stock rejection does not")
    func lateVerdictsCompensate() throws {
        let charged = try place()
        try harness.deliverScheduled("deadline-\(charged)")
        let late = try harness.handle(
            PaymentSucceeded(orderId: charged, userId: user, amountCents: 300, lines: lines), correlation: charged)
        #expect(late.eventTypes == ["OrderCancelled"], "payments refunds and inventory releases on it")
        #expect(late.result == nil, "the command keeps its timeout")
        #expect(try status(charged) == "cancelled")

        let declined = try place()
        try harness.deliverScheduled("deadline-\(declined)")
        let failed = try harness.handle(
            PaymentFailed(orderId: declined, userId: user, amountCents: 300, lines: lines, reason: "no money"),
            correlation: declined)
        #expect(failed.eventTypes == ["OrderCancelled"], "the reservation it followed is released")

        let rejected = try place()
        try harness.deliverScheduled("deadline-\(rejected)")
        let stock = try harness.handle(
            StockRejected(orderId: rejected, userId: user, reason: "none"), correlation: rejected)
        #expect(stock.events.isEmpty, "nothing was held")
    }

    @Test("saga_deadline is read from the service's settings and validated")
    func settings() throws {
        #expect(try Orders.Settings(["saga_deadline": "2s"]).deadline == 2)
        #expect(try Orders.Settings([:]).deadline == 30)
        #expect(throws: Orders.SettingsError.self) { try Orders.Settings(["saga_deadline": "soon"]) }
        #expect(throws: Orders.SettingsError.self) { try Orders.Settings(["saga_deadline": "0s"]) }
        #expect(throws: Orders.SettingsError.self) { try Orders.Settings(["deadline": "2s"]) }
    }
}
