// Migrator: applies a schema's numbered migrations once, in order, under an advisory lock, and
// records them in a table inside that schema.

/// Applies the migrations of one schema.
///
/// Safe to run from many processes at once: a session advisory lock keyed on the schema name
/// serializes them, and each migration runs in its own transaction together with the row
/// that records it in `{schema}.schema_migrations`, so a crash mid-way leaves no half-applied
/// step.
public struct Migrator: Sendable {
    /// The schema the migrations belong to (created if missing).
    public let schema: String
    /// The migrations, sorted by version.
    public let migrations: [Migration]

    /// Creates a migrator; throws when two migrations share a version or the schema name is
    /// not a plain identifier.
    public init(schema: String, migrations: [Migration]) throws {
        guard Self.isIdentifier(schema) else {
            throw PostgresError(.server, message: "schema name '\(schema)' must match [a-z_][a-z0-9_]*")
        }
        self.schema = schema
        self.migrations = try Migration.validated(migrations)
    }

    /// Applies every migration not yet recorded; returns the versions applied by this call.
    @discardableResult
    public func migrate(on connection: PostgresConnection) throws -> [Int] {
        let lockKey = "choreo.migrate.\(schema)"
        try connection.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey]) }
        try connection.execute(
            """
            CREATE SCHEMA IF NOT EXISTS \(schema);
            CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """)
        let done = Set(
            try connection.query("SELECT version FROM \(schema).schema_migrations").rows.map {
                try $0.decode(Int.self, at: 0)
            })
        var applied: [Int] = []
        for migration in migrations where !done.contains(migration.version) {
            try connection.transaction { connection in
                try connection.execute("SET LOCAL search_path TO \(schema), public")
                try connection.execute(migration.sql)
                try connection.query(
                    "INSERT INTO \(schema).schema_migrations (version, name) VALUES ($1, $2)",
                    [migration.version, migration.name])
            }
            applied.append(migration.version)
        }
        return applied
    }

    /// The versions already applied, ascending.
    public func appliedVersions(on connection: PostgresConnection) throws -> [Int] {
        let exists = try connection.query(
            "SELECT to_regclass($1) IS NOT NULL AS present", ["\(schema).schema_migrations"])
        guard try exists.first?.decode(Bool.self, "present") == true else { return [] }
        return try connection.query("SELECT version FROM \(schema).schema_migrations ORDER BY version").rows.map {
            try $0.decode(Int.self, at: 0)
        }
    }

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
            && name.count <= 63
    }
}
