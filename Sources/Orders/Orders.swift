// Orders: the orders service of the reference system. Keeps a profile per user (from
// UserCreated), takes orders (event-sourced: `order_events` is the truth, `orders` the
// projection for reads) and drives the saga's outcome: it turns StockRejected, PaymentSucceeded
// and PaymentFailed into OrderConfirmed or OrderCancelled and the command's result.

import Choreo
import Foundation
import Postgres
import ShopContracts

/// The orders service.
///
/// Commands (on `orders.commands`):
/// - `PlaceOrder {userId, items, checkout?}`: an order whose id is the command id, for a user
///   with a profile (not ready yet while the profile has not arrived, then `failed`,
///   `unknown_user`, after `not_yet_limit`). With `checkout` (the default) it is
///   placed at once (`OrderPlaced`) and the command's result is the saga's verdict; with
///   `checkout: false` it stays open and the result is the open order.
/// - `AddItemToOrder {id, productId, quantity}`: while the order is open.
/// - `CheckoutOrder {id}`: places an open order; the result is the saga's verdict.
/// - `CancelOrder {id}`: cancels an open or confirmed order (`OrderCancelled`; a confirmed
///   one is restocked and refunded by inventory and payments).
/// - `GetOrder {id}`, `ListUserOrders {id}`: reads from the projection.
/// - `OrderDeadline {orderId}`: its own delayed command, scheduled when an order is placed
///   (``Settings/deadline``, `saga_deadline` in `streams.yml`): a still-pending order is
///   cancelled with reason `timeout` (the command's result: `failed`, code `timeout`); the
///   deadline is cancelled when the verdict comes first.
///
/// Events it reacts to: `UserCreated` (`users.events`) -> profile + `UserProfileCreated`;
/// `StockRejected` (`inventory.events`), `PaymentSucceeded` / `PaymentFailed`
/// (`payments.events`) -> `OrderConfirmed` / `OrderCancelled`. A payment verdict for an order
/// its deadline already cancelled publishes `OrderCancelled` again, so the charge is refunded
/// and the reservation released (money and stock stay conserved).
public enum Orders {
    /// The service's settings (`settings:` of the service in `streams.yml`).
    public struct Settings: Sendable, Equatable {
        /// How long a placed order may wait for its saga's verdict before it is cancelled with
        /// reason `timeout`, in seconds (`saga_deadline`, default 30 s).
        public var deadline: Double = 30

        /// The defaults.
        public init() {}

        /// Reads `saga_deadline` from a service's settings; other keys are an error.
        public init(_ settings: [String: String]) throws {
            for (key, value) in settings {
                guard key == "saga_deadline" else {
                    throw SettingsError("unknown setting '\(key)' of orders (expected: saga_deadline)")
                }
                guard let seconds = Topology.seconds(value), seconds >= 0.1, seconds <= 86400 * 7 else {
                    throw SettingsError("saga_deadline must be a duration between 100ms and 7d (got '\(value)')")
                }
                deadline = seconds
            }
        }
    }

    /// A setting that cannot be used.
    public struct SettingsError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The id of an order's deadline message (one per order; cancelled by the verdict).
    static func deadlineID(_ orderID: String) -> String { "deadline-\(orderID)" }

    struct Listing: Codable {
        var orders: [Order]
    }

    /// The schema's migrations.
    public static let migrations = [
        Migration(
            version: 1, name: "orders",
            sql: """
                CREATE TABLE profiles (
                    user_id uuid PRIMARY KEY,
                    email text NOT NULL,
                    name text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE order_events (
                    order_id uuid NOT NULL,
                    version int NOT NULL,
                    type text NOT NULL,
                    data jsonb NOT NULL,
                    message_id text NOT NULL,
                    at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (order_id, version)
                );
                CREATE TABLE orders (
                    id uuid PRIMARY KEY,
                    user_id uuid NOT NULL,
                    status text NOT NULL,
                    total_cents bigint,
                    version int NOT NULL,
                    doc jsonb NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE INDEX orders_user ON orders (user_id, created_at DESC);
                CREATE INDEX orders_status ON orders (status) WHERE status IN ('open', 'pending');
                """)
    ]

    /// The service's code, under `name`.
    public static func service(name: String = "orders", settings: Settings = Settings()) -> Service {
        var service = Service(name: name, migrations: migrations)
        service.on(UserCreated.self, createProfile)
        service.on(PlaceOrder.self) { context, command in try place(context, command, settings) }
        service.on(AddItemToOrder.self) { context, command in
            guard command.quantity > 0 else {
                return try context.reject("quantity must be positive", code: "invalid_quantity")
            }
            try decide(context, orderID: command.id, reply: true) {
                $0.addItem(OrderItem(productId: command.productId, quantity: command.quantity))
            }
        }
        service.on(CheckoutOrder.self) { context, command in
            try decide(context, orderID: command.id, reply: false, settings: settings) { $0.checkout() }
        }
        service.on(CancelOrder.self) { context, command in
            try decide(context, orderID: command.id, reply: true) { $0.cancel() }
        }
        service.on(StockRejected.self) { context, verdict in
            try decide(context, orderID: verdict.orderId, reply: true, cancelCode: "stock_rejected") {
                $0.settle(.cancelled(reason: verdict.reason))
            }
        }
        service.on(PaymentFailed.self) { context, verdict in
            try decide(context, orderID: verdict.orderId, reply: true, cancelCode: "payment_failed") {
                $0.settle(.cancelled(reason: verdict.reason), holds: true)
            }
        }
        service.on(PaymentSucceeded.self) { context, verdict in
            try decide(context, orderID: verdict.orderId, reply: true) {
                $0.settle(.confirmed(lines: verdict.lines, totalCents: verdict.amountCents), holds: true)
            }
        }
        service.on(OrderDeadline.self) { context, deadline in
            try decide(context, orderID: deadline.orderId, reply: true, cancelCode: "timeout") {
                $0.expire(after: settings.deadline)
            }
        }
        service.sends(OrderDeadline.self, to: name)
        service.on(GetOrder.self) { context, query in
            let id = query.id
            guard UUID(uuidString: id) != nil,
                let row = try context.query("SELECT doc::text AS doc FROM orders WHERE id = $1::uuid", [id]).first
            else { return try context.reject("no order \(id)", code: "not_found") }
            try context.succeed(try row.decodeJSON(Order.self, "doc"))
        }
        service.on(ListUserOrders.self) { context, query in
            let id = query.id
            guard UUID(uuidString: id) != nil,
                try context.query("SELECT 1 FROM profiles WHERE user_id = $1::uuid", [id]).first != nil
            else { return try context.reject("no user \(id)", code: "not_found") }
            let rows = try context.query(
                "SELECT doc::text AS doc FROM orders WHERE user_id = $1::uuid ORDER BY created_at DESC, id LIMIT 200",
                [id])
            try context.succeed(Listing(orders: try rows.rows.map { try $0.decodeJSON(Order.self, "doc") }))
        }
        service.publishes(
            UserProfileCreated.self, UserProfileCreationFailed.self, OrderPlaced.self, OrderConfirmed.self,
            OrderCancelled.self)
        return service
    }

    /// The seed's UserProfileCreated / UserProfileCreationFailed step.
    static func createProfile(_ context: MessageContext, _ event: UserCreated) throws {
        let inserted = try context.query(
            "INSERT INTO profiles (user_id, email, name) VALUES ($1::uuid, $2, $3) ON CONFLICT DO NOTHING RETURNING user_id",
            [event.userId, event.email, event.name])
        if inserted.first != nil {
            try context.publish(UserProfileCreated(userId: event.userId))
        } else {
            try context.publish(UserProfileCreationFailed(userId: event.userId, error: "a profile already exists"))
        }
    }

    static func place(_ context: MessageContext, _ command: PlaceOrder, _ settings: Settings) throws {
        let items = command.items ?? []
        guard UUID(uuidString: command.userId) != nil else {
            return try context.reject("unknown user \(command.userId)", code: "unknown_user")
        }
        guard try context.query("SELECT 1 FROM profiles WHERE user_id = $1::uuid", [command.userId]).first != nil else {
            // An order right after the user was created can overtake the UserCreated that makes
            // the profile: not yet (rejected as unknown_user after not_yet_limit).
            throw HandlerError.notYet("unknown user \(command.userId)", code: "unknown_user")
        }
        if let bad = items.first(where: { $0.quantity <= 0 }) {
            return try context.reject("quantity of \(bad.productId) must be positive", code: "invalid_quantity")
        }
        let checkout = command.checkout ?? true
        if checkout && items.isEmpty { return try context.reject("the order has no items", code: "empty_order") }
        var events: [OrderEvent] = [.created(userId: command.userId, items: items)]
        if checkout { events.append(.placed) }
        let order = try OrderStore.append(events, to: Order(id: context.envelope.id), context: context)
        if checkout {
            try context.publish(placed(order, settings))
            try scheduleDeadline(context, order.id, settings)
        } else {
            try context.succeed(order, type: "OrderCreated")
        }
    }

    /// Loads the order, asks `decision` what to do, appends, publishes and replies.
    /// `reply`: whether the result of this message is the order (false for a checkout, whose
    /// result is the saga's verdict).
    static func decide(
        _ context: MessageContext, orderID: String, reply: Bool, cancelCode: String = "order_cancelled",
        settings: Settings = Settings(), _ decision: (Order) -> Order.Decision
    ) throws {
        guard UUID(uuidString: orderID) != nil, let order = try OrderStore.load(orderID, context: context) else {
            return try context.reject("no order \(orderID)", code: "not_found")
        }
        switch decision(order) {
        case .ignore:
            context.logger.info("order already settled; event ignored", metadata: ["order": "\(orderID)"])
        case .compensate:
            context.logger.warning(
                "verdict after the order was cancelled; announcing the cancellation again to release what it holds",
                metadata: ["order": "\(orderID)", "verdict": "\(context.envelope.type)"])
            try context.publish(fact(order) as OrderCancelled)
        case .refuse(let code, let reason):
            try context.reject(reason, code: code)
        case .append(let events):
            let next = try OrderStore.append(events, to: order, context: context)
            for event in events {
                switch event {
                case .placed:
                    try context.publish(placed(next, settings))
                    try scheduleDeadline(context, next.id, settings)
                case .confirmed: try context.publish(fact(next) as OrderConfirmed)
                case .cancelled: try context.publish(fact(next) as OrderCancelled)
                case .created, .itemAdded: break
                }
            }
            // The verdict came first: the deadline has nothing left to do.
            if order.status == .pending, next.status != .pending, context.envelope.type != OrderDeadline.messageType {
                try context.cancelScheduled(deadlineID(next.id))
            }
            guard reply else { return }
            if next.status == .cancelled, order.status == .pending {
                try context.reject(next.reason ?? "cancelled", code: cancelCode, type: "OrderCancelled")
            } else {
                try context.succeed(next, type: events.last?.type)
            }
        }
    }

    /// Schedules the order's deadline (its own `OrderDeadline`, after ``Settings/deadline``).
    static func scheduleDeadline(_ context: MessageContext, _ orderID: String, _ settings: Settings) throws {
        try context.send(
            OrderDeadline(orderId: orderID), to: context.service, after: .milliseconds(Int64(settings.deadline * 1000)),
            id: deadlineID(orderID))
    }

    /// OrderPlaced, with its deadline (about when the scheduled OrderDeadline falls due).
    static func placed(_ order: Order, _ settings: Settings) -> OrderPlaced {
        var placed: OrderPlaced = fact(order)
        placed.deadlineAt = Envelope.nowMilliseconds() + Int64(settings.deadline * 1000)
        return placed
    }

    static func fact<Kind>(_ order: Order) -> OrderFact<Kind> {
        OrderFact(
            orderId: order.id, userId: order.userId, items: order.items, totalCents: order.totalCents,
            reason: order.reason)
    }
}
