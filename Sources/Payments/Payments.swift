// Payments: the accounts and money of the reference system. Opens an account per user,
// takes deposits, charges an order once its stock is reserved, and refunds a charged order that
// is cancelled. Every money movement is a row in `ledger`, so money conservation can be checked.

import Choreo
import Foundation
import Postgres
import ShopContracts

/// The payments service.
///
/// Commands (on `payments.commands`):
/// - `Deposit {userId, amountCents}` -> `FundsDeposited`; the account as the result. Before the
///   account exists (the deposit overtook UserCreated) it is not ready yet
///   (``HandlerError/notYet(_:code:)``), and `not_found` once it has waited `not_yet_limit`.
/// - `GetAccount {userId}`: the account, or `not_found`.
///
/// Events it reacts to:
/// - `UserCreated {userId}` (`users.events`): opens an empty account.
/// - `StockReserved {orderId, userId, lines, totalCents}` (`inventory.events`): charges the
///   total -> `PaymentSucceeded` or `PaymentFailed` (insufficient funds, no account); both
///   carry the priced lines on to orders.
/// - `OrderCancelled {orderId}` (`orders.events`): refunds a captured charge -> `PaymentRefunded`.
public enum Payments {
    /// The schema's migrations.
    public static let migrations = [
        Migration(
            version: 1, name: "accounts",
            sql: """
                CREATE TABLE accounts (
                    user_id uuid PRIMARY KEY,
                    balance_cents bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE charges (
                    order_id uuid PRIMARY KEY,
                    user_id uuid NOT NULL,
                    amount_cents bigint NOT NULL,
                    status text NOT NULL CHECK (status IN ('captured', 'refunded', 'declined')),
                    reason text,
                    updated_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE ledger (
                    seq bigserial PRIMARY KEY,
                    user_id uuid NOT NULL,
                    order_id uuid,
                    kind text NOT NULL CHECK (kind IN ('deposit', 'charge', 'refund')),
                    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
                    message_id text NOT NULL UNIQUE,
                    at timestamptz NOT NULL DEFAULT now()
                );
                CREATE INDEX ledger_user ON ledger (user_id);
                """)
    ]

    /// The service's code, under `name`.
    public static func service(name: String = "payments") -> Service {
        var service = Service(name: name, migrations: migrations)
        service.on(UserCreated.self) { context, event in
            try context.execute(
                "INSERT INTO accounts (user_id) VALUES ($1::uuid) ON CONFLICT DO NOTHING", [event.userId])
        }
        service.on(Deposit.self, deposit)
        service.on(GetAccount.self) { context, query in
            let userId = query.userId
            guard UUID(uuidString: userId) != nil,
                let row = try context.query(
                    "SELECT user_id::text AS user_id, balance_cents FROM accounts WHERE user_id = $1::uuid", [userId]
                ).first
            else {
                try context.reject("no account for user \(userId)", code: "not_found")
                return
            }
            try context.succeed(try account(row))
        }
        service.on(StockReserved.self, charge)
        service.on(OrderCancelled.self, refund)
        service.publishes(FundsDeposited.self, PaymentSucceeded.self, PaymentFailed.self, PaymentRefunded.self)
        return service
    }

    static func deposit(_ context: MessageContext, _ command: Deposit) throws {
        guard command.amountCents > 0 else {
            try context.reject("amountCents must be positive", code: "invalid_amount")
            return
        }
        guard UUID(uuidString: command.userId) != nil else {
            try context.reject("no account for user \(command.userId)", code: "not_found")
            return
        }
        guard
            let row = try context.query(
                "UPDATE accounts SET balance_cents = balance_cents + $2, updated_at = now() WHERE user_id = $1::uuid RETURNING user_id::text AS user_id, balance_cents",
                [command.userId, command.amountCents]
            ).first
        else {
            // A deposit right after the user was created can overtake the UserCreated that opens
            // the account: not yet, rather than not found (rejected after not_yet_limit).
            throw HandlerError.notYet("no account for user \(command.userId)", code: "not_found")
        }
        try context.execute(
            "INSERT INTO ledger (user_id, kind, amount_cents, message_id) VALUES ($1::uuid, 'deposit', $2, $3)",
            [command.userId, command.amountCents, context.envelope.id])
        let account = try self.account(row)
        try context.publish(FundsDeposited(account))
        try context.succeed(account)
    }

    /// Charges the reserved total, all or nothing.
    static func charge(_ context: MessageContext, _ event: StockReserved) throws {
        let debited = try context.query(
            "UPDATE accounts SET balance_cents = balance_cents - $2, updated_at = now() WHERE user_id = $1::uuid AND balance_cents >= $2 RETURNING balance_cents",
            [event.userId, event.totalCents])
        if debited.first != nil {
            try context.execute(
                "INSERT INTO charges (order_id, user_id, amount_cents, status) VALUES ($1::uuid, $2::uuid, $3, 'captured')",
                [event.orderId, event.userId, event.totalCents])
            if event.totalCents > 0 {
                try context.execute(
                    "INSERT INTO ledger (user_id, order_id, kind, amount_cents, message_id) VALUES ($1::uuid, $2::uuid, 'charge', $3, $4)",
                    [event.userId, event.orderId, event.totalCents, context.envelope.id])
            }
            try context.publish(
                PaymentSucceeded(
                    orderId: event.orderId, userId: event.userId, amountCents: event.totalCents, lines: event.lines))
        } else {
            let balance = try context.query(
                "SELECT balance_cents FROM accounts WHERE user_id = $1::uuid", [event.userId]
            ).first.map { try $0.decode(Int.self, "balance_cents") }
            let reason =
                balance.map { "insufficient funds: balance \($0) cents, order total \(event.totalCents) cents" }
                ?? "user \(event.userId) has no account"
            try context.execute(
                "INSERT INTO charges (order_id, user_id, amount_cents, status, reason) VALUES ($1::uuid, $2::uuid, $3, 'declined', $4)",
                [event.orderId, event.userId, event.totalCents, reason])
            try context.publish(
                PaymentFailed(
                    orderId: event.orderId, userId: event.userId, amountCents: event.totalCents, lines: event.lines,
                    reason: reason))
        }
    }

    /// Refunds a captured charge of a cancelled order (nothing to do otherwise).
    static func refund(_ context: MessageContext, _ event: OrderCancelled) throws {
        guard
            let row = try context.query(
                "UPDATE charges SET status = 'refunded', updated_at = now() WHERE order_id = $1::uuid AND status = 'captured' RETURNING user_id::text AS user_id, amount_cents",
                [event.orderId]
            ).first
        else { return }
        let amount = try row.decode(Int.self, "amount_cents")
        guard amount > 0 else { return }
        let refund = PaymentRefunded(
            orderId: event.orderId, userId: try row.decode(String.self, "user_id"),
            amountCents: amount)
        try context.execute(
            "UPDATE accounts SET balance_cents = balance_cents + $2, updated_at = now() WHERE user_id = $1::uuid",
            [refund.userId, refund.amountCents])
        try context.execute(
            "INSERT INTO ledger (user_id, order_id, kind, amount_cents, message_id) VALUES ($1::uuid, $2::uuid, 'refund', $3, $4)",
            [refund.userId, refund.orderId, refund.amountCents, context.envelope.id])
        try context.publish(refund)
    }

    static func account(_ row: PostgresRow) throws -> Account {
        Account(userId: try row.decode(String.self, "user_id"), balanceCents: try row.decode(Int.self, "balance_cents"))
    }
}
