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
        #expect(try harness.handle(PlaceOrder(userId: Envelope.newID(), items: [item])).rejectionCode == "unknown_user")
        let zero = OrderItem(productId: Envelope.newID(), quantity: 0)
        #expect(try harness.handle(PlaceOrder(userId: user, items: [zero])).rejectionCode == "invalid_quantity")
        #expect(try harness.handle(PlaceOrder(userId: user, items: [])).rejectionCode == "empty_order")
        let order = try place()
        #expect(try status(order) == "pending")
        let placed = try #require(try harness.query("SELECT doc::text AS doc FROM orders").first)
        #expect(try placed.decodeJSON(Order.self, "doc").items == [item])
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
