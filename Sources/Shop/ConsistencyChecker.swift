// ConsistencyChecker: verifies the reference system's invariants by reading every service's
// schema as an operator: money conserved, stock conserved, every order settled (or still within
// its saga deadline), the services agreeing on each settled order, nothing held for a cancelled
// order, and no message applied twice.

import Choreo
import Foundation
import Orders
import Postgres

/// The reference system's invariants, checked against the databases.
public struct ConsistencyChecker: Sendable {
    /// One checked invariant.
    public struct Check: Codable, Sendable, Equatable {
        /// Its name, e.g. `money conserved`.
        public var name: String
        /// Whether it holds.
        public var ok: Bool
        /// The numbers behind it, or the first offenders.
        public var detail: String
    }

    /// Everything checked, with the totals an operator wants to see.
    public struct Report: Codable, Sendable {
        public var checks: [Check]
        public var orders: [String: Int]
        public var users: Int
        public var products: Int
        /// Whether every invariant holds.
        public var ok: Bool { checks.allSatisfy(\.ok) }
    }

    /// The schemas of the four services.
    public var users: String
    public var orders: String
    public var inventory: String
    public var payments: String
    /// How long an order may stay `pending` (its saga running) before it counts as stuck; also
    /// the grace before services must agree on a just-settled order (compensations in flight).
    public var sagaTimeout: Double

    /// The checker for `topology`'s reference services (schemas from the topology). The saga
    /// timeout defaults to the orders service's `saga_deadline` plus 10 s for the cancellation
    /// to land (the deadline makes every order settle by then).
    public init(topology: Topology, sagaTimeout: Double? = nil) throws {
        func schema(_ name: String) throws -> String {
            guard let schema = topology.service(name)?.schema else {
                throw CheckerError("the topology has no service '\(name)' with a schema")
            }
            return schema
        }
        users = try schema("users")
        orders = try schema("orders")
        inventory = try schema("inventory")
        payments = try schema("payments")
        let deadline = try Orders.Settings(topology.service("orders")?.settings ?? [:]).deadline
        self.sagaTimeout = sagaTimeout ?? deadline + 10
    }

    /// Runs every check on `connection` (a role that can read all four schemas).
    public func check(_ connection: PostgresConnection) throws -> Report {
        let query = Query(connection: connection)
        let checks = [
            try money(query), try stock(query), try settledOrders(query), try agreement(query),
            try nothingHeldForCancelled(query), try appliedOnce(query),
        ]
        var counts: [String: Int] = [:]
        for row in try connection.query("SELECT status, count(*) AS n FROM \(orders).orders GROUP BY status").rows {
            counts[try row.decode(String.self, "status")] = try row.decode(Int.self, "n")
        }
        return Report(
            checks: checks, orders: counts, users: try query.scalar("SELECT count(*) AS n FROM \(users).users"),
            products: try query.scalar("SELECT count(*) AS n FROM \(inventory).products"))
    }

    /// Reads for the checks: one number, or the offending rows' descriptions (column `x`).
    struct Query {
        let connection: PostgresConnection

        func scalar(_ sql: String) throws -> Int {
            try connection.query(sql).first?.decodeIfPresent(Int.self, "n") ?? 0
        }

        func offenders(_ sql: String) throws -> [String] {
            try connection.query(sql).rows.map { try $0.decode(String.self, "x") }
        }
    }

    /// A check passes when nothing offends; its detail names the first offenders.
    static func check(_ name: String, _ offending: [String], _ summary: String) -> Check {
        Check(
            name: name, ok: offending.isEmpty,
            detail: offending.isEmpty
                ? summary : "\(offending.count) offending: " + offending.prefix(5).joined(separator: "; "))
    }

    /// Money: every balance is its ledger; deposits = balances + charged - refunded; net charges = captured.
    func money(_ query: Query) throws -> Check {
        let deposits = try query.scalar("SELECT sum(amount_cents) AS n FROM \(payments).ledger WHERE kind = 'deposit'")
        let charged = try query.scalar("SELECT sum(amount_cents) AS n FROM \(payments).ledger WHERE kind = 'charge'")
        let refunded = try query.scalar("SELECT sum(amount_cents) AS n FROM \(payments).ledger WHERE kind = 'refund'")
        let balances = try query.scalar("SELECT sum(balance_cents) AS n FROM \(payments).accounts")
        let captured = try query.scalar(
            "SELECT sum(amount_cents) AS n FROM \(payments).charges WHERE status = 'captured'")
        var money = try query.offenders(
            """
            SELECT a.user_id || ': balance ' || a.balance_cents || ' != ledger ' || coalesce(l.net, 0) AS x
            FROM \(payments).accounts a LEFT JOIN (
                SELECT user_id, sum(CASE kind WHEN 'charge' THEN -amount_cents ELSE amount_cents END) AS net
                FROM \(payments).ledger GROUP BY user_id) l ON l.user_id = a.user_id
            WHERE a.balance_cents <> coalesce(l.net, 0) LIMIT 20
            """)
        if deposits != balances + charged - refunded {
            money.append("deposits \(deposits) != balances \(balances) + charged \(charged) - refunded \(refunded)")
        }
        if charged - refunded != captured {
            money.append("charged \(charged) - refunded \(refunded) != captured \(captured)")
        }
        return Self.check(
            "money conserved", money,
            "deposits \(deposits) = balances \(balances) + charged \(charged) - refunded \(refunded); captured \(captured)"
        )
    }

    /// Stock: every product's stock is the sum of its movements; reservations match their movements.
    func stock(_ query: Query) throws -> Check {
        let stock = try query.offenders(
            """
            SELECT p.id || ': stock ' || p.stock || ' != movements ' || coalesce(m.net, 0) AS x
            FROM \(inventory).products p LEFT JOIN (
                SELECT product_id, sum(quantity) AS net FROM \(inventory).movements GROUP BY product_id) m
                ON m.product_id = p.id
            WHERE p.stock <> coalesce(m.net, 0) LIMIT 20
            """)
        let reservations = try query.offenders(
            """
            SELECT r.order_id || ': ' || r.status || ' but movements net ' || coalesce(m.net, 0) AS x
            FROM \(inventory).reservations r LEFT JOIN (
                SELECT order_id, sum(quantity) AS net FROM \(inventory).movements
                WHERE order_id IS NOT NULL GROUP BY order_id) m ON m.order_id = r.order_id
            WHERE (r.status = 'released' AND coalesce(m.net, 0) <> 0)
               OR (r.status = 'held' AND coalesce(m.net, 0) >= 0)
            LIMIT 20
            """)
        let units = try query.scalar("SELECT sum(stock) AS n FROM \(inventory).products")
        return Self.check(
            "stock conserved", stock + reservations, "\(units) units in stock, every product matches its movements")
    }

    /// No cancelled order keeps a captured charge or a held reservation past the grace period
    /// (counted from the hold itself: a late verdict after a deadline holds briefly until its
    /// compensation runs).
    func nothingHeldForCancelled(_ query: Query) throws -> Check {
        let grace = "interval '\(Int(min(sagaTimeout, 10))) seconds'"
        let held = try query.offenders(
            """
            SELECT 'order ' || o.id || ' cancelled, charge captured' AS x FROM \(orders).orders o
                JOIN \(payments).charges c ON c.order_id = o.id
                WHERE o.status = 'cancelled' AND c.status = 'captured' AND c.updated_at < now() - \(grace)
            UNION ALL
            SELECT 'order ' || o.id || ' cancelled, stock reserved' FROM \(orders).orders o
                JOIN \(inventory).reservations r ON r.order_id = o.id
                WHERE o.status = 'cancelled' AND r.status = 'held' AND r.updated_at < now() - \(grace)
            LIMIT 20
            """)
        return Self.check(
            "nothing held for a cancelled order", held, "no charge captured or stock reserved for a cancelled order")
    }

    /// Every order settled, or pending within the saga timeout.
    func settledOrders(_ query: Query) throws -> Check {
        let timeout = Int(sagaTimeout)
        let stuck = try query.offenders(
            """
            SELECT id || ' pending since ' || updated_at AS x FROM \(orders).orders
            WHERE status = 'pending' AND updated_at < now() - interval '\(timeout) seconds' LIMIT 20
            """)
        return Self.check("every order settled", stuck, "no order pending longer than \(timeout) s")
    }

    /// Orders, charges and reservations agree on every order settled before the grace period.
    func agreement(_ query: Query) throws -> Check {
        let timeout = Int(sagaTimeout)
        let settled = "o.updated_at < now() - interval '\(min(timeout, 10)) seconds'"
        let disagreements = try query.offenders(
            """
            SELECT o.id || ': ' || o.status || ' with charge ' || coalesce(c.status, 'none')
                   || ', reservation ' || coalesce(r.status, 'none') AS x
            FROM \(orders).orders o
            LEFT JOIN \(payments).charges c ON c.order_id = o.id
            LEFT JOIN \(inventory).reservations r ON r.order_id = o.id
            WHERE \(settled) AND (
                (o.status = 'confirmed' AND (c.status IS DISTINCT FROM 'captured' OR r.status IS DISTINCT FROM 'held'
                    OR c.amount_cents IS DISTINCT FROM o.total_cents))
             OR (o.status = 'cancelled' AND (c.status = 'captured' OR r.status = 'held'))
             OR (o.status = 'open' AND (c.order_id IS NOT NULL OR r.order_id IS NOT NULL)))
            LIMIT 20
            """)
        return Self.check("services agree on every order", disagreements, "orders, charges and reservations agree")
    }

    /// No message applied twice (ledger, movements, order events).
    func appliedOnce(_ query: Query) throws -> Check {
        let twice = try query.offenders(
            """
            SELECT 'ledger ' || message_id AS x FROM \(payments).ledger GROUP BY message_id HAVING count(*) > 1
            UNION ALL
            SELECT 'ledger order ' || order_id || ' ' || kind FROM \(payments).ledger WHERE order_id IS NOT NULL
                GROUP BY order_id, kind HAVING count(*) > 1
            UNION ALL
            SELECT 'movements order ' || order_id || ' ' || kind FROM (
                SELECT DISTINCT order_id, kind, message_id FROM \(inventory).movements WHERE order_id IS NOT NULL) d
                GROUP BY order_id, kind HAVING count(*) > 1
            UNION ALL
            SELECT 'order events ' || order_id || ' ' || type FROM \(orders).order_events
                WHERE type <> 'ItemAdded' GROUP BY order_id, type HAVING count(*) > 1
            UNION ALL
            SELECT 'order event message ' || message_id || ' ' || type FROM \(orders).order_events
                GROUP BY message_id, type HAVING count(*) > 1
            LIMIT 20
            """)
        return Self.check("no message applied twice", twice, "every effect row has a distinct message")
    }

    /// Why the checker cannot run.
    public struct CheckerError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
