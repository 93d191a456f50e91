// InventoryTests: inventory's decisions, one message at a time through the handler harness.

import Choreo
import ChoreoTesting
import Inventory
import ShopContracts
import Testing

@Suite("Inventory handlers")
struct InventoryTests {
    let harness: HandlerHarness

    init() throws { harness = try HandlerHarness(Inventory.service()) }

    /// Creates a product; returns its id.
    func product(sku: String, price: Int, stock: Int) throws -> String {
        let handled = try harness.handle(CreateProduct(sku: sku, name: sku, priceCents: price, stock: stock))
        return try #require(try handled.succeeded(Product.self)).id
    }

    func stock(_ id: String) throws -> Int? {
        try harness.query("SELECT stock FROM products WHERE id = $1::uuid", [id]).first?.decode(Int.self, "stock")
    }

    @Test("a reservation takes every line or none, priced from the catalogue")
    func reservationIsAllOrNothing() throws {
        let apple = try product(sku: "apple", price: 150, stock: 5)
        let pear = try product(sku: "pear", price: 200, stock: 1)
        let tooMany = try harness.handle(
            OrderPlaced(
                orderId: Envelope.newID(), userId: Envelope.newID(),
                items: [OrderItem(productId: apple, quantity: 2), OrderItem(productId: pear, quantity: 2)]))
        #expect(tooMany.eventTypes == ["StockRejected"])
        #expect(try tooMany.event(StockRejected.self)?.reason.contains("not enough stock of product \(pear)") == true)
        #expect(try stock(apple) == 5)
        #expect(try stock(pear) == 1)
        #expect(try harness.query("SELECT 1 FROM reservations").rows.isEmpty)

        let order = Envelope.newID()
        let placed = try harness.handle(
            OrderPlaced(
                orderId: order, userId: Envelope.newID(),
                items: [OrderItem(productId: apple, quantity: 2), OrderItem(productId: pear, quantity: 1)]))
        let reserved = try #require(try placed.event(StockReserved.self))
        #expect(reserved.orderId == order)
        #expect(reserved.totalCents == 2 * 150 + 200)
        #expect(Set(reserved.lines.map(\.unitPriceCents)) == [150, 200])
        #expect(try stock(apple) == 3)
        #expect(try stock(pear) == 0)
    }

    @Test("an unknown product or an empty order is rejected without touching stock")
    func unknownProductsAreRejected() throws {
        let apple = try product(sku: "apple", price: 150, stock: 5)
        let unknown = try harness.handle(
            OrderPlaced(
                orderId: Envelope.newID(), userId: Envelope.newID(),
                items: [OrderItem(productId: apple, quantity: 1), OrderItem(productId: Envelope.newID(), quantity: 1)]))
        #expect(try unknown.event(StockRejected.self)?.reason.hasPrefix("unknown product") == true)
        let empty = try harness.handle(OrderPlaced(orderId: Envelope.newID(), userId: Envelope.newID(), items: []))
        #expect(try empty.event(StockRejected.self)?.reason == "the order has no items")
        #expect(try stock(apple) == 5)
    }

    @Test("cancelling releases a held reservation once; a cancelled order that reserved nothing is a no-op")
    func releaseReturnsStockOnce() throws {
        let apple = try product(sku: "apple", price: 150, stock: 5)
        let order = Envelope.newID()
        try harness.handle(
            OrderPlaced(orderId: order, userId: Envelope.newID(), items: [OrderItem(productId: apple, quantity: 4)]))
        #expect(try stock(apple) == 1)
        let cancelled = OrderCancelled(orderId: order, userId: Envelope.newID(), items: [])
        let released = try harness.handle(cancelled)
        #expect(try released.event(StockReleased.self)?.lines.map(\.quantity) == [4])
        #expect(try stock(apple) == 5)
        #expect(try harness.handle(cancelled).events.isEmpty)
        #expect(try harness.handle(OrderCancelled(orderId: Envelope.newID(), userId: "", items: [])).events.isEmpty)
        #expect(try stock(apple) == 5)
    }

    @Test("a redelivered message is a duplicate: stock moves once")
    func redeliveryIsADuplicate() throws {
        let apple = try product(sku: "apple", price: 150, stock: 5)
        let placed = OrderPlaced(
            orderId: Envelope.newID(), userId: Envelope.newID(), items: [OrderItem(productId: apple, quantity: 1)])
        let id = Envelope.newID()
        #expect(try harness.handle(placed, id: id).outcome == .handled)
        let again = try harness.handle(placed, id: id, attempt: 2)
        #expect(again.outcome == .duplicate)
        #expect(again.events.isEmpty)
        #expect(try stock(apple) == 4)
    }

    @Test("a taken SKU and a negative price are business rejections; a malformed payload is poison")
    func badCommands() throws {
        _ = try product(sku: "apple", price: 150, stock: 5)
        let duplicate = try harness.handle(CreateProduct(sku: "apple", name: "again", priceCents: 1, stock: 1))
        #expect(duplicate.outcome == .rejected)
        #expect(duplicate.rejectionCode == "duplicate_sku")
        #expect(duplicate.events.isEmpty)
        let negative = try harness.handle(CreateProduct(sku: "x", name: "x", priceCents: -1, stock: 1))
        #expect(negative.rejectionCode == "invalid_product")
        let malformed = try harness.handle(type: "OrderPlaced", data: #"{"orderId": 7}"#, from: "{orders}.events")
        guard case .poison(let reason) = malformed.outcome else {
            Issue.record("expected poison, got \(malformed.outcome)")
            return
        }
        #expect(reason.contains("does not decode as OrderPlaced"), "\(reason)")
        #expect(malformed.state == .dead(reason: reason))
    }
}
