// OrderStore: reads an order by folding its events, and appends new events with optimistic
// concurrency (the (order_id, version) key refuses a concurrent append) while keeping the
// `orders` projection in the same transaction.

import Choreo
import Foundation
import Postgres
import ShopContracts

/// The event store of orders, inside a message's transaction.
enum OrderStore {
    /// The order folded from its events, or `nil` when it has none.
    static func load(_ id: String, context: MessageContext) throws -> Order? {
        let rows = try context.query(
            """
            SELECT type, data::text AS data,
                   to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
            FROM order_events WHERE order_id = $1::uuid ORDER BY version
            """, [id])
        guard !rows.rows.isEmpty else { return nil }
        var order = Order(id: id.lowercased())
        for row in rows.rows {
            let event = try OrderEvent(
                type: try row.decode(String.self, "type"), data: try row.decode(String.self, "data"))
            order = order.applying(event, at: try row.decode(String.self, "at"))
        }
        return order
    }

    /// Appends `events` after `order`'s version and updates the projection; returns the new
    /// state. A concurrent writer makes the commit fail on the primary key, and the message is
    /// retried against the new history.
    static func append(_ events: [OrderEvent], to order: Order, context: MessageContext) throws -> Order {
        let at = iso(context.envelope.at)
        var next = order
        for event in events {
            next = next.applying(event, at: at)
            try context.execute(
                "INSERT INTO order_events (order_id, version, type, data, message_id, at) VALUES ($1::uuid, $2, $3, $4::jsonb, $5, $6::timestamptz)",
                [order.id, next.version, event.type, try event.data(), context.envelope.id, at])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let doc = String(decoding: try encoder.encode(next), as: UTF8.self)
        try context.execute(
            """
            INSERT INTO orders (id, user_id, status, total_cents, version, doc, created_at, updated_at)
            VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::jsonb, $7::timestamptz, $8::timestamptz)
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, total_cents = excluded.total_cents,
                version = excluded.version, doc = excluded.doc, updated_at = excluded.updated_at
            WHERE orders.version = \(order.version)
            """,
            [next.id, next.userId, next.status.rawValue, next.totalCents, next.version, doc, next.createdAt, at])
        return next
    }

    /// Milliseconds since the epoch as ISO 8601 UTC with milliseconds.
    static func iso(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(milliseconds % 1000))
    }
}
