// Inventory: the products and stock of the reference system. Reserves the stock of a placed
// order (all lines or none) at the current prices, and releases it when the order is cancelled.
// Every stock change is a row in `movements`, so stock conservation can be checked.

import Choreo
import Foundation
import Postgres
import ShopContracts

/// The inventory service.
///
/// Commands (on `inventory.commands`):
/// - `CreateProduct {sku, name, priceCents, stock}` -> `ProductCreated`; a taken SKU is a
///   `failed` result (`duplicate_sku`).
/// - `RestockProduct {id, quantity}` -> `ProductRestocked`.
/// - `GetProduct {id}`: the product, or `not_found`.
///
/// Events it reacts to (on `orders.events`):
/// - `OrderPlaced {orderId, userId, items}`: reserves every line or none, pricing each line
///   from the catalogue -> `StockReserved {orderId, userId, lines, totalCents}` or
///   `StockRejected {orderId, userId, reason}` (unknown product, not enough stock).
/// - `OrderCancelled {orderId}`: releases a held reservation -> `StockReleased`.
public enum Inventory {
    /// The schema's migrations.
    public static let migrations = [
        Migration(
            version: 1, name: "products",
            sql: """
                CREATE TABLE products (
                    id uuid PRIMARY KEY,
                    sku text NOT NULL UNIQUE,
                    name text NOT NULL,
                    price_cents bigint NOT NULL CHECK (price_cents >= 0),
                    stock bigint NOT NULL CHECK (stock >= 0),
                    created_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE reservations (
                    order_id uuid PRIMARY KEY,
                    lines jsonb NOT NULL,
                    total_cents bigint NOT NULL,
                    status text NOT NULL CHECK (status IN ('held', 'released')),
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE movements (
                    seq bigserial PRIMARY KEY,
                    product_id uuid NOT NULL REFERENCES products (id),
                    order_id uuid,
                    kind text NOT NULL CHECK (kind IN ('initial', 'restock', 'reserve', 'release')),
                    quantity bigint NOT NULL,
                    message_id text NOT NULL,
                    at timestamptz NOT NULL DEFAULT now(),
                    UNIQUE (message_id, product_id)
                );
                CREATE INDEX movements_product ON movements (product_id);
                """)
    ]

    /// The service's code, under `name`.
    public static func service(name: String = "inventory") -> Service {
        var service = Service(name: name, migrations: migrations)
        service.on(CreateProduct.self, create)
        service.on(RestockProduct.self, restock)
        service.on(GetProduct.self) { context, query in
            let id = query.id
            guard let product = try fetch(context, id: id) else {
                try context.reject("no product \(id)", code: "not_found")
                return
            }
            try context.succeed(product)
        }
        service.on(OrderPlaced.self, reserve)
        service.on(OrderCancelled.self, release)
        service.publishes(
            ProductCreated.self, ProductRestocked.self, StockReserved.self, StockRejected.self, StockReleased.self)
        return service
    }

    static let columns = "id::text AS id, sku, name, price_cents, stock"

    static func create(_ context: MessageContext, _ command: CreateProduct) throws {
        guard command.priceCents >= 0, command.stock >= 0 else {
            try context.reject("price and stock must not be negative", code: "invalid_product")
            return
        }
        let inserted = try context.query(
            "INSERT INTO products (id, sku, name, price_cents, stock) VALUES ($1::uuid, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING \(columns)",
            [context.envelope.id, command.sku, command.name, command.priceCents, command.stock])
        guard let row = inserted.first else {
            try context.reject("a product with SKU '\(command.sku)' already exists", code: "duplicate_sku")
            return
        }
        try context.execute(
            "INSERT INTO movements (product_id, kind, quantity, message_id) VALUES ($1::uuid, 'initial', $2, $3)",
            [context.envelope.id, command.stock, context.envelope.id])
        let product = try self.product(row)
        try context.publish(ProductCreated(product))
        try context.succeed(product)
    }

    static func restock(_ context: MessageContext, _ command: RestockProduct) throws {
        guard command.quantity > 0 else {
            try context.reject("quantity must be positive", code: "invalid_quantity")
            return
        }
        guard UUID(uuidString: command.id) != nil,
            let row = try context.query(
                "UPDATE products SET stock = stock + $2 WHERE id = $1::uuid RETURNING \(columns)",
                [command.id, command.quantity]
            ).first
        else {
            try context.reject("no product \(command.id)", code: "not_found")
            return
        }
        try context.execute(
            "INSERT INTO movements (product_id, kind, quantity, message_id) VALUES ($1::uuid, 'restock', $2, $3)",
            [command.id, command.quantity, context.envelope.id])
        let product = try self.product(row)
        try context.publish(ProductRestocked(product))
        try context.succeed(product)
    }

    /// Reserves every line or none. The products are locked in id order (no deadlock between
    /// two orders in one transaction), then checked, then decremented.
    static func reserve(_ context: MessageContext, _ order: OrderPlaced) throws {
        var wanted: [String: Int] = [:]
        for item in order.items {
            guard UUID(uuidString: item.productId) != nil else {
                return try reject(context, order, "unknown product \(item.productId)")
            }
            guard item.quantity > 0 else {
                return try reject(context, order, "quantity of \(item.productId) must be positive")
            }
            wanted[item.productId.lowercased(), default: 0] += item.quantity
        }
        guard !wanted.isEmpty else { return try reject(context, order, "the order has no items") }
        let ids = wanted.keys.sorted()
        let rows = try context.query(
            "SELECT id::text AS id, price_cents, stock FROM products WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
            [ids])
        var found: [String: (price: Int, stock: Int)] = [:]
        for row in rows.rows {
            found[try row.decode(String.self, "id")] = (
                try row.decode(Int.self, "price_cents"), try row.decode(Int.self, "stock")
            )
        }
        var lines: [OrderLine] = []
        for id in ids {
            guard let product = found[id] else { return try reject(context, order, "unknown product \(id)") }
            let quantity = wanted[id]!
            guard product.stock >= quantity else {
                return try reject(
                    context, order, "not enough stock of product \(id): \(product.stock) left, \(quantity) wanted")
            }
            lines.append(OrderLine(productId: id, quantity: quantity, unitPriceCents: product.price))
        }
        for line in lines {
            try context.execute(
                "UPDATE products SET stock = stock - $2 WHERE id = $1::uuid", [line.productId, line.quantity])
            try context.execute(
                "INSERT INTO movements (product_id, order_id, kind, quantity, message_id) VALUES ($1::uuid, $2::uuid, 'reserve', $3, $4)",
                [line.productId, order.orderId, -line.quantity, context.envelope.id])
        }
        let total = lines.reduce(0) { $0 + $1.quantity * $1.unitPriceCents }
        try context.execute(
            "INSERT INTO reservations (order_id, lines, total_cents, status) VALUES ($1::uuid, $2::jsonb, $3, 'held')",
            [order.orderId, try jsonText(lines), total])
        try context.publish(
            StockReserved(orderId: order.orderId, userId: order.userId, lines: lines, totalCents: total))
    }

    static func reject(_ context: MessageContext, _ order: OrderPlaced, _ reason: String) throws {
        try context.publish(StockRejected(orderId: order.orderId, userId: order.userId, reason: reason))
    }

    /// Releases a held reservation (a cancelled order that never reserved anything is a no-op).
    static func release(_ context: MessageContext, _ event: OrderCancelled) throws {
        guard
            let row = try context.query(
                "UPDATE reservations SET status = 'released', updated_at = now() WHERE order_id = $1::uuid AND status = 'held' RETURNING lines::text AS lines",
                [event.orderId]
            ).first
        else { return }
        let lines = try JSONDecoder().decode([OrderLine].self, from: Data(try row.decode(String.self, "lines").utf8))
        for line in lines {
            try context.execute(
                "UPDATE products SET stock = stock + $2 WHERE id = $1::uuid", [line.productId, line.quantity])
            try context.execute(
                "INSERT INTO movements (product_id, order_id, kind, quantity, message_id) VALUES ($1::uuid, $2::uuid, 'release', $3, $4)",
                [line.productId, event.orderId, line.quantity, context.envelope.id])
        }
        try context.publish(StockReleased(orderId: event.orderId, lines: lines))
    }

    static func fetch(_ context: MessageContext, id: String) throws -> Product? {
        guard UUID(uuidString: id) != nil else { return nil }
        return try context.query("SELECT \(columns) FROM products WHERE id = $1::uuid", [id]).first.map(product)
    }

    static func product(_ row: PostgresRow) throws -> Product {
        Product(
            id: try row.decode(String.self, "id"), sku: try row.decode(String.self, "sku"),
            name: try row.decode(String.self, "name"), priceCents: try row.decode(Int.self, "price_cents"),
            stock: try row.decode(Int.self, "stock"))
    }

    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
