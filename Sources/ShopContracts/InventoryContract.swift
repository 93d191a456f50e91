// InventoryContract: the messages of the inventory service: its commands, the events it
// publishes (the stock side of the order saga), and its results.

import Choreo

/// `CreateProduct` (POST /v1/products).
public struct CreateProduct: CommandContract, Equatable {
    public var sku: String
    public var name: String
    public var priceCents: Int
    public var stock: Int

    public init(sku: String, name: String, priceCents: Int, stock: Int) {
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
        self.stock = stock
    }
}

/// `RestockProduct` (POST /v1/products/{id}/restock).
public struct RestockProduct: CommandContract, Equatable {
    public var id: String
    public var quantity: Int

    public init(id: String, quantity: Int) {
        self.id = id
        self.quantity = quantity
    }
}

/// `GetProduct` (GET /v1/products/{id}).
public struct GetProduct: CommandContract, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}

/// A product as the API shows it (the result of CreateProduct, RestockProduct, GetProduct).
public struct Product: Codable, Sendable, Equatable {
    public var id: String
    public var sku: String
    public var name: String
    public var priceCents: Int
    public var stock: Int

    public init(id: String, sku: String, name: String, priceCents: Int, stock: Int) {
        self.id = id
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
        self.stock = stock
    }
}

/// Which product event a ``ProductFact`` is: its name on the wire.
public protocol ProductFactKind: Sendable {
    static var name: String { get }
}

/// The product events' kinds.
public enum ProductFactKinds {
    /// `ProductCreated`: a new product.
    public enum Created: ProductFactKind { public static var name: String { "ProductCreated" } }
    /// `ProductRestocked`: the product with its new stock.
    public enum Restocked: ProductFactKind { public static var name: String { "ProductRestocked" } }
}

/// A product event on `inventory.events`: the product as it stands after it.
public struct ProductFact<Kind: ProductFactKind>: EventContract, Equatable {
    public static var messageType: String { Kind.name }

    public var id: String
    public var sku: String
    public var name: String
    public var priceCents: Int
    public var stock: Int

    public init(_ product: Product) {
        (id, sku, name, priceCents, stock) = (product.id, product.sku, product.name, product.priceCents, product.stock)
    }
}

/// `ProductCreated` on `inventory.events`.
public typealias ProductCreated = ProductFact<ProductFactKinds.Created>
/// `ProductRestocked` on `inventory.events`.
public typealias ProductRestocked = ProductFact<ProductFactKinds.Restocked>

/// `StockReserved` on `inventory.events`: every line of a placed order is held, priced from
/// the catalogue; payments charges the total.
public struct StockReserved: EventContract, Equatable {
    public var orderId: String
    public var userId: String
    public var lines: [OrderLine]
    public var totalCents: Int

    public init(orderId: String, userId: String, lines: [OrderLine], totalCents: Int) {
        self.orderId = orderId
        self.userId = userId
        self.lines = lines
        self.totalCents = totalCents
    }
}

/// `StockRejected` on `inventory.events`: nothing was reserved (unknown product, not enough
/// stock, no items); orders cancels the order.
public struct StockRejected: EventContract, Equatable {
    public var orderId: String
    public var userId: String
    public var reason: String

    public init(orderId: String, userId: String, reason: String) {
        self.orderId = orderId
        self.userId = userId
        self.reason = reason
    }
}

/// `StockReleased` on `inventory.events`: a cancelled order's reservation went back to stock.
public struct StockReleased: EventContract, Equatable {
    public var orderId: String
    public var lines: [OrderLine]

    public init(orderId: String, lines: [OrderLine]) {
        self.orderId = orderId
        self.lines = lines
    }
}
