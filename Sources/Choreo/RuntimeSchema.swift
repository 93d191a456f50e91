// RuntimeSchema: the tables the runtime keeps in every service schema (inbox and outbox) and
// the SQL it runs against them.

import Postgres

/// The runtime's tables in a service schema, created by migration version 0 (service
/// migrations start at 1):
/// - `inbox`: ids of messages whose effects are committed (the dedup set), with stream, type
///   and correlation for tracing; pruned after the retention window (BRIN on `processed_at`).
///   There is deliberately no index on `correlation`: it cost about 30 % of a no-op batch's
///   throughput, and a trace scans one saga's time window instead.
/// - `outbox`: messages emitted by committed transactions: one row per committed batch
///   (`stream` = `*`, `fields` the batch's messages as JSON), or, from older versions, one row
///   per message; the relay reads both. A published row is kept for the republish window
///   (`published_at` set), so that what Redis loses (a failover to a replica that had not
///   received it, a restart from an older snapshot) is published again.
/// - `scheduled`: delayed messages (``MessageContext/send(_:to:after:id:)`` and the like),
///   written in the handler's transaction, published by the ``Scheduler`` when due (then moved
///   to the outbox as a published row, for the republish window); the `id` is the message's
///   envelope id, the handle to cancel it by.
/// - `redis_epoch`: the identity of the Redis servers the rows were published to (run ids and
///   replication ids of the masters); a change means Redis may have lost writes.
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

    /// Applies the runtime's and the service's migrations to `schema`, then the runtime's
    /// additive upgrades (idempotent; service migration numbers stay the services' own).
    @discardableResult
    public static func migrate(schema: String, service: Service, on connection: PostgresConnection) throws -> [Int] {
        let applied = try Migrator(schema: schema, migrations: [migration] + service.migrations).migrate(on: connection)
        try connection.execute(upgrades(schema))
        return applied
    }

    /// Columns and tables added after version 0.
    static func upgrades(_ schema: String) -> String {
        """
        ALTER TABLE \(schema).outbox ADD COLUMN IF NOT EXISTS published_at timestamptz;
        CREATE TABLE IF NOT EXISTS \(schema).redis_epoch (
            id int PRIMARY KEY CHECK (id = 1),
            epoch text NOT NULL,
            seen_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS \(schema).scheduled (
            id text PRIMARY KEY,
            due_at timestamptz NOT NULL,
            stream text NOT NULL,
            type text NOT NULL,
            fields text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS scheduled_due ON \(schema).scheduled (due_at);
        -- A queue table: vacuumed after a fixed number of deleted rows, not a fraction of it.
        ALTER TABLE \(schema).scheduled SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);
        """
    }

    /// Schedules messages given as arrays: ids, due times in ms since the epoch (-1: none; a
    /// past time is now),
    /// delays in ms (from the commit, by the database's clock, when there is no due time),
    /// streams, types and stored fields.
    static func scheduleInsertMany(_ schema: String) -> String {
        """
        INSERT INTO \(schema).scheduled (id, due_at, stream, type, fields)
        SELECT id, CASE WHEN at >= 0 THEN greatest(to_timestamp(at / 1000), clock_timestamp())
                   ELSE clock_timestamp() + make_interval(secs => delay / 1000) END, stream, type, fields
        FROM unnest($1::text[], $2::double precision[], $3::double precision[], $4::text[], $5::text[], $6::text[])
            AS t(id, at, delay, stream, type, fields)
        ON CONFLICT (id) DO NOTHING
        """
    }

    /// Cancels a scheduled message by id (nothing if it was delivered or never scheduled).
    static func scheduleCancel(_ schema: String) -> String {
        "DELETE FROM \(schema).scheduled WHERE id = $1"
    }

    static func inboxInsert(_ schema: String) -> String {
        """
        INSERT INTO \(schema).inbox (message_id, stream, type, correlation)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        ON CONFLICT (message_id) DO NOTHING RETURNING message_id
        """
    }

    /// The inbox insert of a batch taken as fresh: a known id is a unique violation.
    static func inboxInsertStrict(_ schema: String) -> String {
        """
        INSERT INTO \(schema).inbox (message_id, stream, type, correlation)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        """
    }

    static func inboxDelete(_ schema: String) -> String {
        "DELETE FROM \(schema).inbox WHERE message_id = ANY($1::text[])"
    }

    /// One outbox row holding a batch's messages (``OutboxMessage/encodeBatch(_:)``).
    static func outboxInsert(_ schema: String) -> String {
        "INSERT INTO \(schema).outbox (stream, fields) VALUES ('\(OutboxMessage.batchRow)', $1) RETURNING seq"
    }

    /// Marks rows published; they stay for the republish window.
    static func outboxPublished(_ schema: String) -> String {
        "UPDATE \(schema).outbox SET published_at = now() WHERE seq = ANY($1::bigint[])"
    }
}
