// RuntimeSchema: the tables the runtime keeps in every service schema (inbox and outbox) and
// the SQL it runs against them.

import Postgres

/// The runtime's tables in a service schema, created by migration version 0 (service
/// migrations start at 1):
/// - `inbox`: ids of messages whose effects are committed (the dedup set), with stream, type
///   and correlation for tracing; pruned after the retention window (BRIN on `processed_at`).
///   There is deliberately no index on `correlation`: it cost about 30 % of a no-op batch's
///   throughput, and a trace scans one saga's time window instead.
/// - `outbox`: messages emitted by committed transactions and not yet published.
public enum RuntimeSchema {
    /// The runtime's migration, applied before the service's own.
    public static let migration = Migration(
        version: 0, name: "choreo_runtime",
        sql: """
            CREATE TABLE inbox (
                message_id text PRIMARY KEY,
                stream text NOT NULL,
                type text NOT NULL,
                correlation text NOT NULL,
                processed_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX inbox_processed_at ON inbox USING brin (processed_at);
            CREATE TABLE outbox (
                seq bigserial PRIMARY KEY,
                stream text NOT NULL,
                fields text NOT NULL,
                command_id text,
                status text,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            """)

    /// Applies the runtime's and the service's migrations to `schema`.
    @discardableResult
    public static func migrate(schema: String, service: Service, on connection: PostgresConnection) throws -> [Int] {
        try Migrator(schema: schema, migrations: [migration] + service.migrations).migrate(on: connection)
    }

    static func inboxInsert(_ schema: String) -> String {
        """
        INSERT INTO \(schema).inbox (message_id, stream, type, correlation)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        ON CONFLICT (message_id) DO NOTHING RETURNING message_id
        """
    }

    static func inboxDelete(_ schema: String) -> String {
        "DELETE FROM \(schema).inbox WHERE message_id = ANY($1::text[])"
    }

    static func outboxInsert(_ schema: String) -> String {
        """
        INSERT INTO \(schema).outbox (stream, fields, command_id, status)
        SELECT s, f, NULLIF(c, ''), NULLIF(st, '') FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(s, f, c, st)
        RETURNING seq
        """
    }

    static func outboxDelete(_ schema: String) -> String {
        "DELETE FROM \(schema).outbox WHERE seq = ANY($1::bigint[])"
    }
}
