// Migration: one numbered SQL step of a schema's history.

import Foundation

/// One numbered, named SQL step. Versions are applied in ascending order, each once.
public struct Migration: Sendable, Hashable {
    /// The version number (the `NNN` of `NNN_name.sql`); unique within a schema.
    public var version: Int
    /// A short name for logs.
    public var name: String
    /// SQL text, possibly several statements. It runs with `search_path` set to the schema,
    /// so unqualified names land in the schema.
    public var sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Loads `NNN_name.sql` files from `directory`, sorted by version. Throws when a file
    /// name has no number or two files share one.
    public static func load(directory: String) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }
        var migrations: [Migration] = []
        for file in files {
            let stem = String(file.dropLast(4))
            let digits = stem.prefix { $0.isNumber }
            guard let version = Int(digits) else {
                throw PostgresError(.server, message: "migration file '\(file)' does not start with a version number")
            }
            let name = stem.dropFirst(digits.count).drop { $0 == "_" || $0 == "-" }
            let sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            migrations.append(Migration(version: version, name: String(name), sql: sql))
        }
        return try validated(migrations)
    }

    static func validated(_ migrations: [Migration]) throws -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw PostgresError(
                .server, message: "two migrations share version \(next.version): '\(previous.name)' and '\(next.name)'")
        }
        return sorted
    }
}
