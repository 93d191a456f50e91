// OrdersContract: the messages of the orders service: its commands, the events it publishes
// (the order saga's start and verdict), and the order lines every saga step carries.

import Choreo

/// A requested line: product and quantity.
public struct OrderItem: Codable, Sendable, Equatable {
    public var productId: String
    public var quantity: Int

    public init(productId: String, quantity: Int) {
        self.productId = productId
        self.quantity = quantity
    }
}

/// A priced line, as reserved by inventory and charged by payments.
public struct OrderLine: Codable, Sendable, Equatable {
    public var productId: String
    public var quantity: Int
    public var unitPriceCents: Int

    public init(productId: String, quantity: Int, unitPriceCents: Int) {
        self.productId = productId
        self.quantity = quantity
        self.unitPriceCents = unitPriceCents
    }
}

/// `PlaceOrder` (POST /v1/orders): an order for a user; with `checkout` (the default) it is
/// placed at once.
public struct PlaceOrder: CommandContract, Equatable {
    public var userId: String
    public var items: [OrderItem]?
    public var checkout: Bool?

    public init(userId: String, items: [OrderItem]?, checkout: Bool? = nil) {
        self.userId = userId
        self.items = items
        self.checkout = checkout
    }
}

/// `AddItemToOrder` (POST /v1/orders/{id}/items): while the order is open.
public struct AddItemToOrder: CommandContract, Equatable {
    public var id: String
    public var productId: String
    public var quantity: Int

    public init(id: String, productId: String, quantity: Int) {
        self.id = id
        self.productId = productId
        self.quantity = quantity
    }
}

/// `CheckoutOrder` (POST /v1/orders/{id}/checkout).
public struct CheckoutOrder: CommandContract, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}

/// `CancelOrder` (POST /v1/orders/{id}/cancel).
public struct CancelOrder: CommandContract, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}

/// `OrderDeadline`: orders' own delayed command, scheduled when an order is placed (after the
/// `saga_deadline`); a still-pending order is then cancelled with reason `timeout`.
public struct OrderDeadline: CommandContract, Equatable {
    public var orderId: String

    public init(orderId: String) { self.orderId = orderId }
}

/// `GetOrder` (GET /v1/orders/{id}).
public struct GetOrder: CommandContract, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}

/// `ListUserOrders` (GET /v1/users/{id}/orders).
public struct ListUserOrders: CommandContract, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}

/// `UserProfileCreated` on `orders.events`: orders keeps a profile of a new user.
public struct UserProfileCreated: EventContract, Equatable {
    public var userId: String

    public init(userId: String) { self.userId = userId }
}

/// `UserProfileCreationFailed` on `orders.events`: the profile existed already.
public struct UserProfileCreationFailed: EventContract, Equatable {
    public var userId: String
    public var error: String

    public init(userId: String, error: String) {
        self.userId = userId
        self.error = error
    }
}

/// Which order event an ``OrderFact`` is: its name on the wire.
public protocol OrderFactKind: Sendable {
    static var name: String { get }
}

/// The order events' kinds.
public enum OrderFactKinds {
    /// `OrderPlaced`: the saga starts; inventory reserves the items.
    public enum Placed: OrderFactKind { public static var name: String { "OrderPlaced" } }
    /// `OrderConfirmed`: stock held and payment captured.
    public enum Confirmed: OrderFactKind { public static var name: String { "OrderConfirmed" } }
    /// `OrderCancelled`: inventory releases the stock, payments refunds.
    public enum Cancelled: OrderFactKind { public static var name: String { "OrderCancelled" } }
}

/// An order event on `orders.events`: the order as it stands after it. The three events share
/// their fields; `Kind` gives each its own type and wire name.
public struct OrderFact<Kind: OrderFactKind>: EventContract, Equatable {
    public static var messageType: String { Kind.name }

    public var orderId: String
    public var userId: String
    public var items: [OrderItem]
    public var totalCents: Int?
    public var reason: String?
    /// On `OrderPlaced`: when the saga's deadline falls (ms since the epoch); the console's saga
    /// timeline shows it.
    public var deadlineAt: Int64?

    public init(
        orderId: String, userId: String, items: [OrderItem], totalCents: Int? = nil, reason: String? = nil,
        deadlineAt: Int64? = nil
    ) {
        (self.orderId, self.userId, self.items, self.totalCents, self.reason, self.deadlineAt) = (
            orderId, userId, items, totalCents, reason, deadlineAt
        )
    }
}

/// `OrderPlaced` on `orders.events`.
public typealias OrderPlaced = OrderFact<OrderFactKinds.Placed>
/// `OrderConfirmed` on `orders.events`.
public typealias OrderConfirmed = OrderFact<OrderFactKinds.Confirmed>
/// `OrderCancelled` on `orders.events`.
public typealias OrderCancelled = OrderFact<OrderFactKinds.Cancelled>
