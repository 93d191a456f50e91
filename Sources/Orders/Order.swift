// Order: the event-sourced order aggregate: its state, its events, how an event changes the
// state (fold) and which events a command produces (decide). Plain values, no I/O.

import Foundation
import ShopContracts

/// An order's lifecycle: `open` (items may be added) -> `pending` (checked out; the saga
/// runs) -> `confirmed` | `cancelled`. A confirmed order may still be cancelled (refunded and
/// restocked by compensation).
public enum OrderStatus: String, Codable, Sendable {
    case open, pending, confirmed, cancelled
}

/// One event of an order's history (the `order_events` table holds them, versioned).
public enum OrderEvent: Sendable, Equatable {
    case created(userId: String, items: [OrderItem])
    case itemAdded(OrderItem)
    case placed
    case confirmed(lines: [OrderLine], totalCents: Int)
    case cancelled(reason: String)

    /// The stored type name.
    public var type: String {
        switch self {
        case .created: return "OrderCreated"
        case .itemAdded: return "ItemAdded"
        case .placed: return "OrderPlaced"
        case .confirmed: return "OrderConfirmed"
        case .cancelled: return "OrderCancelled"
        }
    }

    struct Created: Codable {
        var userId: String
        var items: [OrderItem]
    }
    struct Confirmed: Codable {
        var lines: [OrderLine]
        var totalCents: Int
    }
    struct Cancelled: Codable {
        var reason: String
    }
    struct Empty: Codable {}

    /// The stored JSON data.
    public func data() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes: Data
        switch self {
        case .created(let userId, let items): bytes = try encoder.encode(Created(userId: userId, items: items))
        case .itemAdded(let item): bytes = try encoder.encode(item)
        case .placed: bytes = try encoder.encode(Empty())
        case .confirmed(let lines, let total): bytes = try encoder.encode(Confirmed(lines: lines, totalCents: total))
        case .cancelled(let reason): bytes = try encoder.encode(Cancelled(reason: reason))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes a stored event.
    public init(type: String, data: String) throws {
        let decoder = JSONDecoder()
        let bytes = Data(data.utf8)
        switch type {
        case "OrderCreated":
            let created = try decoder.decode(Created.self, from: bytes)
            self = .created(userId: created.userId, items: created.items)
        case "ItemAdded": self = .itemAdded(try decoder.decode(OrderItem.self, from: bytes))
        case "OrderPlaced": self = .placed
        case "OrderConfirmed":
            let confirmed = try decoder.decode(Confirmed.self, from: bytes)
            self = .confirmed(lines: confirmed.lines, totalCents: confirmed.totalCents)
        case "OrderCancelled": self = .cancelled(reason: try decoder.decode(Cancelled.self, from: bytes).reason)
        default: throw OrderError.unknownEvent(type)
        }
    }
}

/// Why an order event cannot be read.
public enum OrderError: Error, CustomStringConvertible {
    case unknownEvent(String)
    public var description: String {
        switch self {
        case .unknownEvent(let type): return "unknown order event type '\(type)'"
        }
    }
}

/// An order: the fold of its events.
public struct Order: Codable, Sendable, Equatable {
    public var id: String
    public var userId: String
    public var status: OrderStatus
    public var items: [OrderItem]
    public var lines: [OrderLine]
    public var totalCents: Int?
    public var reason: String?
    /// The number of events applied (the optimistic-concurrency version).
    public var version: Int
    public var createdAt: String
    public var updatedAt: String

    /// The state before any event.
    public init(id: String) {
        self.id = id
        self.userId = ""
        self.status = .open
        self.items = []
        self.lines = []
        self.version = 0
        self.createdAt = ""
        self.updatedAt = ""
    }

    /// The state after `event`, recorded at `at`.
    public func applying(_ event: OrderEvent, at: String) -> Order {
        var next = self
        next.version += 1
        next.updatedAt = at
        switch event {
        case .created(let userId, let items):
            next.userId = userId
            next.items = Self.merged(items)
            next.status = .open
            next.createdAt = at
        case .itemAdded(let item):
            next.items = Self.merged(next.items + [item])
        case .placed:
            next.status = .pending
        case .confirmed(let lines, let total):
            next.status = .confirmed
            next.lines = lines
            next.totalCents = total
        case .cancelled(let reason):
            next.status = .cancelled
            next.reason = reason
        }
        return next
    }

    /// Items with the same product merged, in first-seen order.
    static func merged(_ items: [OrderItem]) -> [OrderItem] {
        var order: [String] = []
        var quantities: [String: Int] = [:]
        for item in items {
            let key = item.productId.lowercased()
            if quantities[key] == nil { order.append(key) }
            quantities[key, default: 0] += item.quantity
        }
        return order.map { OrderItem(productId: $0, quantity: quantities[$0]!) }
    }

    /// What a command or a saga event does to the order: new events, or a refusal.
    public enum Decision: Equatable {
        case append([OrderEvent])
        case refuse(code: String, reason: String)
        /// Nothing to do (e.g. an event the order has already moved past).
        case ignore
        /// A verdict that came after the order was cancelled (by its deadline) and leaves
        /// something held (a charge, a reservation): announce the cancellation again, so the
        /// services that hold something release it.
        case compensate
    }

    /// Adding an item: only while open.
    public func addItem(_ item: OrderItem) -> Decision {
        guard status == .open else {
            return .refuse(
                code: "order_not_open",
                reason: "order \(id) is \(status.rawValue); items can be added only while it is open")
        }
        return .append([.itemAdded(item)])
    }

    /// Checking out: an open order with items becomes pending (the saga starts).
    public func checkout() -> Decision {
        guard status == .open else {
            return .refuse(code: "order_not_open", reason: "order \(id) is \(status.rawValue), not open")
        }
        guard !items.isEmpty else { return .refuse(code: "empty_order", reason: "order \(id) has no items") }
        return .append([.placed])
    }

    /// Cancelling by the customer: open or confirmed orders (a confirmed one is compensated).
    public func cancel() -> Decision {
        switch status {
        case .open, .confirmed: return .append([.cancelled(reason: "cancelled by the customer")])
        case .pending:
            return .refuse(
                code: "saga_in_progress", reason: "order \(id) is being processed; try again when it settles")
        case .cancelled: return .refuse(code: "already_cancelled", reason: "order \(id) is already cancelled")
        }
    }

    /// The saga's verdict: confirm (payment captured) or cancel (stock or payment refused).
    /// `holds`: whether the verdict's sender leaves something held (a payment verdict follows a
    /// reservation; a captured payment holds money), to be released if the order was cancelled
    /// meanwhile (a late verdict, after the deadline).
    public func settle(_ event: OrderEvent, holds: Bool = false) -> Decision {
        guard status == .pending else { return status == .cancelled && holds ? .compensate : .ignore }
        return .append([event])
    }

    /// The saga's deadline: a still-pending order is cancelled (`timeout`); any other ignores it.
    public func expire(after seconds: Double) -> Decision {
        guard status == .pending else { return .ignore }
        let shown = seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
        return .append([.cancelled(reason: "timeout: no verdict within the saga deadline of \(shown) s")])
    }
}
