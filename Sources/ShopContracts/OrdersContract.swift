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

/// The fields of the order events: the order as it stands after the event.
public protocol OrderFact: EventContract {
    var orderId: String { get }
    var userId: String { get }
    var items: [OrderItem] { get }
    var totalCents: Int? { get }
    var reason: String? { get }
    init(orderId: String, userId: String, items: [OrderItem], totalCents: Int?, reason: String?)
}

/// `OrderPlaced` on `orders.events`: the saga starts; inventory reserves the items.
public struct OrderPlaced: OrderFact, Equatable {
    public var orderId: String
    public var userId: String
    public var items: [OrderItem]
    public var totalCents: Int?
    public var reason: String?

    public init(orderId: String, userId: String, items: [OrderItem], totalCents: Int? = nil, reason: String? = nil) {
        (self.orderId, self.userId, self.items, self.totalCents, self.reason) = (
            orderId, userId, items, totalCents, reason
        )
    }
}

/// `OrderConfirmed` on `orders.events`: stock held and payment captured.
public struct OrderConfirmed: OrderFact, Equatable {
    public var orderId: String
    public var userId: String
    public var items: [OrderItem]
    public var totalCents: Int?
    public var reason: String?

    public init(orderId: String, userId: String, items: [OrderItem], totalCents: Int? = nil, reason: String? = nil) {
        (self.orderId, self.userId, self.items, self.totalCents, self.reason) = (
            orderId, userId, items, totalCents, reason
        )
    }
}

/// `OrderCancelled` on `orders.events`: inventory releases the stock, payments refunds.
public struct OrderCancelled: OrderFact, Equatable {
    public var orderId: String
    public var userId: String
    public var items: [OrderItem]
    public var totalCents: Int?
    public var reason: String?

    public init(orderId: String, userId: String, items: [OrderItem], totalCents: Int? = nil, reason: String? = nil) {
        (self.orderId, self.userId, self.items, self.totalCents, self.reason) = (
            orderId, userId, items, totalCents, reason
        )
    }
}
