// PostgresConnection: one blocking libpq connection: parameterized queries, transactions,
// savepoints, pipeline mode, SQLSTATE errors and reconnects after a server restart.

import CLibPQ
import Foundation

/// One blocking connection to Postgres, over libpq.
///
/// **Threading.** Not thread-safe: exactly one owner uses it at a time. Its calls block the
/// calling thread; from async code use ``PostgresClient``, which runs them on a dedicated
/// serial queue, never on a SwiftNIO event loop or Swift's cooperative pool.
///
/// **Parameters** are always bound separately from the SQL text (`$1`, `$2`, ...).
///
/// **Reconnects.** If the server restarted or the socket broke, the failing statement throws
/// a ``PostgresError`` with kind `.connectionLost`; the next call outside a transaction resets
/// the connection first.
public final class PostgresConnection: @unchecked Sendable {
    /// The URL or conninfo string this connection was opened with (contains credentials:
    /// never log it; use ``endpoint``).
    private let conninfo: String
    /// `user@host:port/database`, for logs and errors.
    public let endpoint: String
    private var connection: OpaquePointer?
    private var savepointCounter = 0
    private let searchPath: [String]
    private let settings: [(key: String, value: String)]
    private let preferredSettings: [(key: String, value: String)]

    /// Connects to `url` (`postgres://user:password@host:port/db`, `postgresql://...`, a
    /// `?host=/socket/dir` query for unix sockets, or a libpq key=value conninfo string).
    ///
    /// - Parameter connectTimeout: seconds to wait for the server (libpq `connect_timeout`).
    /// - Parameter searchPath: schemas for unqualified names, set on every (re)connect.
    /// - Parameter settings: run-time parameters set on every (re)connect (a refusal fails the
    ///   connection), such as session defaults for `lock_timeout` and `statement_timeout`.
    /// - Parameter preferredSettings: run-time parameters set on every (re)connect when the
    ///   server accepts them (ignored when it does not, e.g. a compression it was built without).
    public init(
        url: String, connectTimeout: Int = 5, searchPath: [String] = [], settings: [String: String] = [:],
        preferredSettings: [String: String] = [:]
    ) throws {
        self.searchPath = searchPath
        self.settings = settings.sorted { $0.key < $1.key }
        self.preferredSettings = preferredSettings.sorted { $0.key < $1.key }
        var parseError: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &parseError) else {
            let reason = parseError.map { String(cString: $0) } ?? "unparseable"
            PQfreemem(parseError)
            throw PostgresError(.invalidURL, message: reason.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var values: [String: String] = [:]
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            cursor += 1
        }
        PQconninfoFree(options)
        let host = values["host"] ?? "localhost"
        let port = values["port"] ?? "5432"
        let user = values["user"].map { "\($0)@" } ?? ""
        self.endpoint = "\(user)\(host):\(port)/\(values["dbname"] ?? values["user"] ?? "")"
        var info = url
        if values["connect_timeout"] == nil {
            info +=
                url.contains("://")
                ? (url.contains("?") ? "&" : "?") + "connect_timeout=\(connectTimeout)"
                : " connect_timeout=\(connectTimeout)"
        }
        self.conninfo = info
        try open()
    }

    deinit {
        if let connection { PQfinish(connection) }
    }

    private func open() throws {
        if let connection { PQfinish(connection) }
        prepared.removeAll()
        sightings.removeAll()
        connection = PQconnectdb(conninfo)
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let reason = Self.trimmed(connection.map { PQerrorMessage($0) } ?? nil) ?? "out of memory"
            throw PostgresError(.connectionFailed, message: "\(endpoint): \(reason)")
        }
        // Server notices ("already exists, skipping") would go to stderr: drop them.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        // Text timestamps are parsed as UTC; keep the session in UTC whatever the server default.
        _ = try simple("SET TIME ZONE 'UTC'")
        for setting in settings {
            _ = try query("SELECT set_config($1, $2, false)", [setting.key, setting.value])
        }
        for setting in preferredSettings {
            _ = try? query("SELECT set_config($1, $2, false)", [setting.key, setting.value])
        }
        if !searchPath.isEmpty {
            let quoted = searchPath.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            _ = try simple("SET search_path TO \(quoted.joined(separator: ", "))")
        }
    }

    /// Closes the connection; the next call reconnects.
    public func close() {
        if let connection { PQfinish(connection) }
        connection = nil
    }

    /// Whether a transaction is open on this connection.
    public var inTransaction: Bool {
        guard let connection else { return false }
        let status = PQtransactionStatus(connection)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// The server's process id for this session (useful to terminate it in tests).
    public var backendPID: Int32 { connection.map { PQbackendPID($0) } ?? 0 }

    /// How many exchanges with the server ``query(_:_:)``, ``execute(_:)`` and ``pipeline(_:)``
    /// have started on this connection (a pipeline is one, however many statements it holds):
    /// what a caller batching its statements can check it saved.
    public private(set) var roundTrips = 0

    // MARK: Statements

    /// Runs one statement with bound parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws -> PostgresResult {
        let connection = try usableConnection()
        let texts = parameters.map { $0?.postgresText }
        try Self.checkParameters(texts, sql: sql)
        roundTrips += 1
        let result = Self.withCStrings(texts) { pointers in
            PQexecParams(connection, sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
        }
        return try consume(result, sql: sql)
    }

    /// Runs SQL text without parameters, possibly several statements separated by `;`
    /// (migrations). Returns the last statement's result.
    @discardableResult
    public func execute(_ sql: String) throws -> PostgresResult {
        _ = try usableConnection()
        roundTrips += 1
        return try simple(sql)
    }

    /// Runs `body` inside `BEGIN` ... `COMMIT`; rolls back and rethrows if it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if connection != nil, PQstatus(connection) == CONNECTION_OK { _ = try? simple("ROLLBACK") }
            throw error
        }
    }

    /// Runs `body` inside a savepoint of the current transaction. If `body` throws, only the
    /// savepoint's work is rolled back and the error is rethrown; the transaction stays usable.
    public func savepoint<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        savepointCounter += 1
        let name = "choreo_sp_\(savepointCounter)"
        try execute("SAVEPOINT \(name)")
        do {
            let value = try body(self)
            try execute("RELEASE SAVEPOINT \(name)")
            return value
        } catch {
            if connection != nil, PQstatus(connection) == CONNECTION_OK {
                _ = try? simple("ROLLBACK TO SAVEPOINT \(name)")
                _ = try? simple("RELEASE SAVEPOINT \(name)")
            }
            throw error
        }
    }

    /// Sends all `statements` in one round trip using libpq pipeline mode and returns each
    /// statement's outcome in order.
    ///
    /// Outside an explicit transaction, the pipeline is one implicit transaction: if one
    /// statement fails, the ones before it are rolled back and the ones after it are not run
    /// (they report a `pipeline aborted` error). Keep pipelines to hundreds of small
    /// statements: the connection is in blocking mode.
    public func pipeline(_ statements: [PostgresStatement]) throws -> [Result<PostgresResult, PostgresError>] {
        guard !statements.isEmpty else { return [] }
        let connection = try usableConnection()
        for statement in statements where !statement.parameters.isEmpty {
            try Self.checkParameters(statement.parameters.map { $0?.postgresText }, sql: statement.sql)
        }
        roundTrips += 1
        guard PQenterPipelineMode(connection) == 1 else { throw lostOrFailed("cannot enter pipeline mode") }
        defer { _ = PQexitPipelineMode(connection) }
        // Statements being prepared in this pipeline: their index and name.
        var preparing: [(index: Int, name: String)] = []
        for (index, statement) in statements.enumerated() {
            let texts = statement.parameters.map { $0?.postgresText }
            var name = prepared[statement.sql]
            if name == nil, !texts.isEmpty, worthPreparing(statement.sql) {
                preparedCounter += 1
                let fresh = "choreo_\(preparedCounter)"
                guard PQsendPrepare(connection, fresh, statement.sql, Int32(texts.count), nil) == 1 else {
                    throw lostOrFailed("sending a pipelined prepare failed")
                }
                preparing.append((index, fresh))
                prepared[statement.sql] = fresh
                name = fresh
            }
            let sent = Self.withCStrings(texts) { pointers in
                if let name {
                    PQsendQueryPrepared(connection, name, Int32(pointers.count), pointers, nil, nil, 0)
                } else {
                    PQsendQueryParams(connection, statement.sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
                }
            }
            guard sent == 1 else { throw lostOrFailed("sending a pipelined statement failed") }
        }
        guard PQpipelineSync(connection) == 1 else { throw lostOrFailed("pipeline sync failed") }
        var outcomes: [Result<PostgresResult, PostgresError>] = []
        outcomes.reserveCapacity(statements.count)
        var nextPrepare = 0
        for (index, statement) in statements.enumerated() {
            if nextPrepare < preparing.count, preparing[nextPrepare].index == index {
                // The prepare's own result: forget the name unless it succeeded.
                nextPrepare += 1
                let result = PQgetResult(connection)
                let ok = result.map { PQresultStatus($0) == PGRES_COMMAND_OK } ?? false
                if let result { PQclear(result) }
                while let extra = PQgetResult(connection) { PQclear(extra) }
                if !ok { prepared[statement.sql] = nil }
            }
            guard let result = PQgetResult(connection) else { throw lostOrFailed("pipeline ended early") }
            if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                PQclear(result)
                outcomes.append(
                    .failure(PostgresError(.server, message: "not run: an earlier statement in the pipeline failed")))
            } else {
                do { outcomes.append(.success(try consume(result, sql: statement.sql))) } catch let error
                    as PostgresError
                {
                    if error.kind == .connectionLost { throw error }
                    // A table changed under a prepared statement ("cached plan must not change
                    // result type"): forget it, so the next use prepares it again.
                    if error.sqlState == "0A000" || error.sqlState == "26000" { prepared[statement.sql] = nil }
                    outcomes.append(.failure(error))
                }
            }
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(connection) { PQclear(extra) }
        }
        // The sync point.
        while let tail = PQgetResult(connection) {
            let status = PQresultStatus(tail)
            PQclear(tail)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        return outcomes
    }

    // MARK: Prepared statements

    /// Server-side prepared statements of this session, by SQL text. Pipelined statements seen
    /// repeatedly are prepared once and then only bound and executed, which spares the server
    /// parsing and planning them each time (most of its work for small INSERTs). Cleared on
    /// reconnect; names are never reused.
    private var prepared: [String: String] = [:]
    /// The last prepared statement number (names are never reused within a session).
    private var preparedCounter = 0
    /// How often each SQL text not yet prepared was pipelined (bounded).
    private var sightings: [String: Int] = [:]
    /// At most this many statements are prepared per session.
    private static let preparedLimit = 512

    /// Whether `sql` has been pipelined often enough to prepare it (the second time).
    private func worthPreparing(_ sql: String) -> Bool {
        guard prepared.count < Self.preparedLimit else { return false }
        let seen = sightings[sql, default: 0] + 1
        if seen >= 2 {
            sightings[sql] = nil
            return true
        }
        if sightings.count < Self.preparedLimit * 4 { sightings[sql] = seen }
        return false
    }

    // MARK: Internals

    private func usableConnection() throws -> OpaquePointer {
        if let connection, PQstatus(connection) == CONNECTION_OK { return connection }
        try open()
        return connection!
    }

    private func simple(_ sql: String) throws -> PostgresResult {
        guard let connection else { throw PostgresError(.connectionLost, message: "\(endpoint): not connected") }
        return try consume(PQexec(connection, sql), sql: sql)
    }

    private func consume(_ result: OpaquePointer?, sql: String) throws -> PostgresResult {
        guard let result else { throw lostOrFailed("no result") }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            let rowCount = Int(PQntuples(result))
            let columnCount = Int(PQnfields(result))
            let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
            var values: [[String?]] = []
            values.reserveCapacity(rowCount)
            for row in 0..<Int32(rowCount) {
                var fields: [String?] = []
                fields.reserveCapacity(columnCount)
                for column in 0..<Int32(columnCount) {
                    if PQgetisnull(result, row, column) == 1 {
                        fields.append(nil)
                    } else {
                        fields.append(String(cString: PQgetvalue(result, row, column)))
                    }
                }
                values.append(fields)
            }
            let affected = Int(String(cString: PQcmdTuples(result))) ?? rowCount
            return PostgresResult(columns: columns, values: values, affectedRows: affected)
        default:
            let state = Self.trimmed(PQresultErrorField(result, Int32(UInt8(ascii: "C"))))
            let message =
                Self.trimmed(PQresultErrorField(result, Int32(UInt8(ascii: "M"))))
                ?? Self.trimmed(PQresultErrorMessage(result)) ?? "unknown error"
            let detail = Self.trimmed(PQresultErrorField(result, Int32(UInt8(ascii: "D"))))
            let constraint = Self.trimmed(PQresultErrorField(result, Int32(UInt8(ascii: "n"))))
            if state == nil, let connection, PQstatus(connection) != CONNECTION_OK {
                throw PostgresError(.connectionLost, message: "\(endpoint): \(message)")
            }
            let kind: PostgresError.Kind = (state == "57P01" || state == "57P02") ? .connectionLost : .server
            throw PostgresError(kind, message: message, sqlState: state, detail: detail, constraint: constraint)
        }
    }

    private func lostOrFailed(_ what: String) -> PostgresError {
        let reason = connection.flatMap { Self.trimmed(PQerrorMessage($0)) } ?? what
        if let connection, PQstatus(connection) == CONNECTION_OK {
            return PostgresError(.server, message: "\(what): \(reason)")
        }
        return PostgresError(.connectionLost, message: "\(endpoint): \(reason)")
    }

    private static func trimmed(_ pointer: UnsafePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        // libpq messages may span lines (a HINT-like second line): keep errors on one line.
        let text = String(cString: pointer).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "; ")
        return text.isEmpty ? nil : text
    }

    private static func trimmed(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
        trimmed(UnsafePointer(pointer))
    }

    /// Refuses parameters holding a NUL byte before anything is sent: libpq takes C strings, so
    /// the value would be cut at the NUL (stored truncated, silently), and Postgres text cannot
    /// hold NUL at all. Binary data belongs in `bytea` (``PostgresBytes``).
    ///
    /// ``query(_:_:)`` and ``pipeline(_:)`` check their parameters this way; a caller that
    /// pipelines a statement behind others checks it first to tell its own error from theirs.
    public static func checkParameters(_ texts: [String?], sql: String) throws {
        for (index, text) in texts.enumerated() {
            guard let text, text.utf8.contains(0) else { continue }
            let statement = sql.split(whereSeparator: \.isNewline).first.map(String.init) ?? sql
            throw PostgresError(
                .invalidParameter,
                message:
                    "parameter $\(index + 1) contains a NUL character (U+0000), which Postgres text cannot store; "
                    + "refused rather than cut short (statement: \(statement.prefix(200)))")
        }
    }

    /// Calls `body` with C strings for `texts` (NULL pointers for `nil`), valid during the call.
    private static func withCStrings<R>(_ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        var storage: [UInt8] = []
        var offsets: [Int?] = []
        offsets.reserveCapacity(texts.count)
        for text in texts {
            if let text {
                offsets.append(storage.count)
                storage.append(contentsOf: text.utf8)
                storage.append(0)
            } else {
                offsets.append(nil)
            }
        }
        storage.append(0)
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            let pointers = offsets.map { offset in
                offset.map { base.advanced(by: $0).assumingMemoryBound(to: CChar.self) }
            }
            return body(pointers)
        }
    }
}
