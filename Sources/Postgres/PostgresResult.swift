// PostgresResult: the rows of one statement, copied out of libpq, with typed column access.

import Foundation

/// The rows a statement returned (copied out of libpq), plus the affected row count.
public struct PostgresResult: Sendable {
    /// Column names in order.
    public let columns: [String]
    /// The rows.
    public let rows: [PostgresRow]
    /// Rows affected by an INSERT/UPDATE/DELETE (or returned by a SELECT).
    public let affectedRows: Int

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        var index: [String: Int] = [:]
        for (position, name) in columns.enumerated() where index[name] == nil { index[name] = position }
        let shared = ColumnIndex(positions: index)
        self.rows = values.map { PostgresRow(values: $0, index: shared) }
        self.affectedRows = affectedRows
    }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}

final class ColumnIndex: Sendable {
    let positions: [String: Int]
    init(positions: [String: Int]) { self.positions = positions }
}

/// One result row. Values are in Postgres's text format and decoded on access.
public struct PostgresRow: Sendable {
    /// The raw text values; `nil` is SQL NULL.
    public let values: [String?]
    let index: ColumnIndex

    /// Decodes column `position` as `T`; throws when it is NULL or not a valid `T`.
    public func decode<T: PostgresDecodable>(_ type: T.Type, at position: Int) throws -> T {
        guard position < values.count else {
            throw PostgresError(.decoding, message: "column \(position) does not exist (\(values.count) columns)")
        }
        guard let text = values[position] else {
            throw PostgresError(.decoding, message: "column \(position) is NULL, expected \(T.self)")
        }
        return try T(postgresText: text)
    }

    /// Decodes the column named `column` as `T`; throws when missing, NULL or invalid.
    public func decode<T: PostgresDecodable>(_ type: T.Type, _ column: String) throws -> T {
        guard let position = index.positions[column] else {
            throw PostgresError(.decoding, message: "no column named '\(column)'")
        }
        guard let text = values[position] else {
            throw PostgresError(.decoding, message: "column '\(column)' is NULL, expected \(T.self)")
        }
        return try T(postgresText: text)
    }

    /// Decodes the column named `column` as `T`, or `nil` when it is NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ type: T.Type, _ column: String) throws -> T? {
        guard let position = index.positions[column] else {
            throw PostgresError(.decoding, message: "no column named '\(column)'")
        }
        guard let text = values[position] else { return nil }
        return try T(postgresText: text)
    }

    /// Decodes a `json`/`jsonb` column into a `Decodable` value.
    public func decodeJSON<T: Decodable>(_ type: T.Type, _ column: String) throws -> T {
        let text = try decode(String.self, column)
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw PostgresError(.decoding, message: "column '\(column)' is not valid JSON for \(T.self): \(error)")
        }
    }

    /// The raw text of the column named `column`, `nil` for NULL or a missing column.
    public subscript(column: String) -> String? {
        guard let position = index.positions[column] else { return nil }
        return values[position]
    }
}
