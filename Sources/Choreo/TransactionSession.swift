// TransactionSession: the batch's open Postgres transaction as handlers see it: an opening
// prelude and queued writes pipelined at commit, immediate queries that first flush both, and a
// lazy savepoint per message so one failing handler rolls back only its own work.

import Postgres

/// The transaction a batch runs in. Writes queued by handlers are sent in one pipeline at
/// commit; an immediate query first flushes every queued write (so reads see earlier
/// messages' effects) and opens a savepoint for the current message.
final class TransactionSession {
    let connection: PostgresConnection
    private var pending: [PostgresStatement] = []
    private var openSavepoint: String?
    /// Set when a flush failed: the transaction is aborted and the batch must be redone.
    private(set) var aborted: PostgresError?

    /// Statements that open the transaction (BEGIN, the inbox rows), sent ahead of the first
    /// flush or of the commit pipeline, whichever comes first: a batch whose handlers only
    /// queue writes costs one round trip.
    private var prelude: [PostgresStatement]

    init(connection: PostgresConnection, prelude: [PostgresStatement] = []) {
        self.connection = connection
        self.prelude = prelude
    }

    /// Queues a write of the current message.
    func enqueue(_ statement: PostgresStatement) {
        pending.append(statement)
    }

    /// Starts handling message number `index`.
    func beginMessage(_ index: Int) {
        openSavepoint = nil
        currentIndex = index
    }

    private var currentIndex = 0
    private var messageStart = 0

    /// Marks where the current message's queued writes begin.
    func markMessageStart() {
        messageStart = pending.count
    }

    /// Runs a statement now, after flushing queued writes, inside the message's savepoint.
    ///
    /// The savepoint is opened before the current message's own queued writes are sent, so a
    /// rollback of the message removes them too (earlier messages' writes go before it). The
    /// prelude, the queued writes, the savepoint and the statement go in one round trip.
    func query(_ sql: String, _ parameters: [(any PostgresEncodable)?]) throws -> PostgresResult {
        // The statement's own bad parameter is its error, not the transaction's.
        try PostgresConnection.checkParameters(parameters.map { $0?.postgresText }, sql: sql)
        var statements: [PostgresStatement]
        var savepoint: String?
        if openSavepoint == nil {
            let name = "m\(currentIndex)"
            let start = min(messageStart, pending.count)
            let earlier = StatementCoalescer.coalesce(Array(pending[..<start]))
            let own = StatementCoalescer.coalesce(Array(pending[start...]))
            statements = prelude + earlier + [PostgresStatement("SAVEPOINT \(name)")] + own
            savepoint = name
        } else {
            statements = prelude + StatementCoalescer.coalesce(pending)
        }
        statements.append(PostgresStatement(sql, parameters))
        let results = try send(statements, lastIsQuery: true)
        if let savepoint { openSavepoint = savepoint }
        switch results[results.count - 1] {
        case .success(let rows): return rows
        case .failure(let error): throw error
        }
    }

    /// Sends the queued writes (not committing).
    func flush() throws {
        guard !pending.isEmpty || !prelude.isEmpty else { return }
        try send(prelude + StatementCoalescer.coalesce(pending))
    }

    /// Sends `statements` (the prelude and queued writes, in order, then with `lastIsQuery` a
    /// handler's statement), which are then no longer pending. Returns their outcomes once the
    /// writes succeeded; the handler's statement may have failed on its own.
    @discardableResult
    private func send(_ statements: [PostgresStatement], lastIsQuery: Bool = false) throws
        -> [Result<PostgresResult, PostgresError>]
    {
        prelude.removeAll()
        pending.removeAll(keepingCapacity: true)
        messageStart = 0
        // Once taken off the queue the statements are not sent again: any failure here leaves
        // the batch to be redone (the transaction is marked aborted).
        let results: [Result<PostgresResult, PostgresError>]
        do {
            results = try connection.pipeline(statements)
        } catch let error as PostgresError {
            aborted = error
            throw error
        }
        for result in results.dropLast(lastIsQuery ? 1 : 0) {
            if case .failure(let error) = result {
                aborted = error
                throw error
            }
        }
        return results
    }

    /// Undoes the current message's work: its savepoint (if any) and its unsent writes.
    func rollbackMessage() throws {
        pending.removeSubrange(min(messageStart, pending.count)...)
        if let name = openSavepoint {
            try connection.execute("ROLLBACK TO SAVEPOINT \(name)")
            openSavepoint = nil
        }
    }

    /// The statements not yet sent (the prelude, if still unsent, and the queued writes), for
    /// the commit pipeline.
    func takePending() -> [PostgresStatement] {
        defer {
            prelude.removeAll()
            pending.removeAll()
        }
        return prelude + StatementCoalescer.coalesce(pending)
    }
}
