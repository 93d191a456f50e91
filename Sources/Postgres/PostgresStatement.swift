// PostgresStatement: one SQL text with its bound parameters, for pipelines and batches.

/// A statement and its parameters, as sent in a pipeline.
public struct PostgresStatement: Sendable {
    /// SQL text with `$1`, `$2`, ... placeholders.
    public var sql: String
    /// The parameters; `nil` binds SQL NULL.
    public var parameters: [(any PostgresEncodable)?]

    /// Creates a statement.
    public init(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}
