// PaymentsTests: payments' decisions, one message at a time through the handler harness.

import Choreo
import ChoreoTesting
import Foundation
import Payments
import ShopContracts
import Testing

@Suite("Payments handlers")
struct PaymentsTests {
    let harness: HandlerHarness
    let user = Envelope.newID()

    init() throws {
        harness = try HandlerHarness(Payments.service())
        try harness.handle(UserCreated(userId: user, email: "a@example.com", name: "A"))
    }

    func balance() throws -> Int? {
        try harness.query("SELECT balance_cents FROM accounts WHERE user_id = $1::uuid", [user]).first?.decode(
            Int.self, "balance_cents")
    }

    func reserved(_ order: String, total: Int) -> StockReserved {
        StockReserved(
            orderId: order, userId: user,
            lines: [OrderLine(productId: Envelope.newID(), quantity: 1, unitPriceCents: total)],
            totalCents: total)
    }

    @Test("a new user gets an empty account; a deposit adds to it")
    func depositsAddUp() throws {
        #expect(try balance() == 0)
        let deposit = try harness.handle(Deposit(userId: user, amountCents: 1_000))
        #expect(try deposit.succeeded(Account.self) == Account(userId: user, balanceCents: 1_000))
        #expect(try deposit.event(FundsDeposited.self)?.balanceCents == 1_000)
        #expect(try harness.handle(Deposit(userId: user, amountCents: 0)).rejectionCode == "invalid_amount")
        #expect(try harness.handle(Deposit(userId: "not-a-uuid", amountCents: 5)).rejectionCode == "not_found")
        #expect(try balance() == 1_000)
    }

    @Test("a deposit that overtakes UserCreated is not ready yet, then lands once the account exists")
    func depositBeforeAccount() throws {
        let newcomer = Envelope.newID()
        let early = try harness.handle(Deposit(userId: newcomer, amountCents: 700))
        guard case .deferred(let reason) = early.outcome else {
            Issue.record("expected a deferral, got \(early.outcome)")
            return
        }
        #expect(reason.contains("no account"))
        #expect(early.result == nil, "no verdict yet")
        let copy = try #require(try harness.scheduled().first)
        #expect(copy.type == "Deposit")
        #expect(copy.stream == harness.definition.commandStream)
        try harness.handle(UserCreated(userId: newcomer, email: "n@example.com", name: "N"))
        let landed = try harness.deliverScheduled(copy.id)
        #expect(try landed.succeeded(Account.self) == Account(userId: newcomer, balanceCents: 700))
        #expect(try harness.scheduled().isEmpty)
    }

    @Test("a deposit for an account that never comes is rejected not_found after not_yet_limit")
    func depositNeverReady() throws {
        var definition = ServiceDefinition(name: "payments")
        definition.policy.notYetLimit = 0.001
        let impatient = try HandlerHarness(Payments.service(), definition: definition)
        let early = try impatient.handle(Deposit(userId: Envelope.newID(), amountCents: 5))
        guard case .deferred = early.outcome else {
            Issue.record("expected a deferral, got \(early.outcome)")
            return
        }
        usleep(5_000)
        let copy = try #require(try impatient.scheduled().first)
        let final = try impatient.deliverScheduled(copy.id)
        #expect(final.rejectionCode == "not_found")
        #expect(final.rejectionReason?.contains("still not ready") == true)
    }

    @Test("reserved stock is charged when the balance covers it, and passes the lines on")
    func chargeSucceeds() throws {
        try harness.handle(Deposit(userId: user, amountCents: 1_000))
        let order = Envelope.newID()
        let charged = try harness.handle(reserved(order, total: 600))
        let succeeded = try #require(try charged.event(PaymentSucceeded.self))
        #expect(succeeded.orderId == order)
        #expect(succeeded.amountCents == 600)
        #expect(succeeded.lines.map(\.unitPriceCents) == [600])
        #expect(try balance() == 400)
    }

    @Test("insufficient funds: nothing is charged and the reason says why")
    func insufficientFunds() throws {
        try harness.handle(Deposit(userId: user, amountCents: 100))
        let declined = try harness.handle(reserved(Envelope.newID(), total: 600))
        #expect(declined.eventTypes == ["PaymentFailed"])
        #expect(
            try declined.event(PaymentFailed.self)?.reason
                == "insufficient funds: balance 100 cents, order total 600 cents")
        #expect(try balance() == 100)
        let stranger = StockReserved(orderId: Envelope.newID(), userId: Envelope.newID(), lines: [], totalCents: 1)
        #expect(try harness.handle(stranger).event(PaymentFailed.self)?.reason.hasSuffix("has no account") == true)
    }

    @Test("a cancelled order's charge is refunded once; a declined one refunds nothing")
    func refundOnce() throws {
        try harness.handle(Deposit(userId: user, amountCents: 1_000))
        let order = Envelope.newID()
        try harness.handle(reserved(order, total: 600))
        let cancelled = OrderCancelled(orderId: order, userId: user, items: [])
        let refunded = try harness.handle(cancelled)
        #expect(
            try refunded.event(PaymentRefunded.self) == PaymentRefunded(orderId: order, userId: user, amountCents: 600))
        #expect(try balance() == 1_000)
        #expect(try harness.handle(cancelled).events.isEmpty)
        let declined = Envelope.newID()
        try harness.handle(reserved(declined, total: 5_000))
        #expect(try harness.handle(OrderCancelled(orderId: declined, userId: user, items: [])).events.isEmpty)
        #expect(try balance() == 1_000)
    }
}
