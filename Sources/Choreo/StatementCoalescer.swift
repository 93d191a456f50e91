// StatementCoalescer: merges runs of the same single-row INSERT queued by a batch's handlers
// into multi-row INSERTs before they are pipelined: the server then executes a few statements
// per batch instead of one per message.

import Foundation
import Postgres
import Synchronization

/// Rewrites consecutive queued statements that are the same plain
/// `INSERT INTO t (a, b) VALUES ($1, $2)` (no other clause) into
/// `INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ...`, in chunks of 64, 16, 4 and 1 rows so
/// that a few statement texts are prepared once per session and reused. Order is kept, so the
/// effect is the same as running them one by one (one failing row fails its chunk, and the
/// batch's transaction with it, as one failing statement would).
enum StatementCoalescer {
    /// A coalescable INSERT: the text up to and including `VALUES`, and its parameter count.
    struct Template: Sendable, Equatable {
        var head: String
        var parameters: Int
    }

    static let chunks = [64, 16, 4]

    /// Templates by SQL text (nil: not coalescable), and multi-row texts by SQL and rows.
    private static let templates = Mutex<[String: Template?]>([:])
    private static let texts = Mutex<[String: String]>([:])

    /// `statements` with consecutive coalescable INSERTs of the same text merged.
    static func coalesce(_ statements: [PostgresStatement]) -> [PostgresStatement] {
        guard statements.count > 1 else { return statements }
        var result: [PostgresStatement] = []
        result.reserveCapacity(statements.count)
        var index = 0
        while index < statements.count {
            let sql = statements[index].sql
            var end = index + 1
            while end < statements.count, statements[end].sql == sql { end += 1 }
            let run = end - index
            if run > 1, let template = template(sql),
                statements[index..<end].allSatisfy({ $0.parameters.count == template.parameters })
            {
                var start = index
                while start < end {
                    let rows = chunks.first { $0 <= end - start } ?? 1
                    if rows == 1 {
                        result.append(statements[start])
                    } else {
                        result.append(
                            PostgresStatement(
                                text(sql, template, rows: rows),
                                statements[start..<start + rows].flatMap(\.parameters)))
                    }
                    start += rows
                }
            } else {
                result += statements[index..<end]
            }
            index = end
        }
        return result
    }

    /// The template of `sql`, parsed once.
    static func template(_ sql: String) -> Template? {
        if let known = templates.withLock({ $0[sql] }) { return known }
        let parsed = parse(sql)
        templates.withLock { cache in
            if cache.count < 4096 { cache[sql] = parsed }
        }
        return parsed
    }

    /// Parses `INSERT INTO <target> VALUES ($1, ..., $k)` with nothing after the tuple.
    static func parse(_ sql: String) -> Template? {
        let text = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        let upper = text.uppercased()
        guard upper.hasPrefix("INSERT INTO "), !text.contains(";"),
            let values = upper.range(of: " VALUES", options: .backwards)
        else { return nil }
        let head = String(text[..<values.upperBound])
        let headUpper = head.uppercased()
        guard !headUpper.contains("SELECT"), !headUpper.contains("DEFAULT VALUES") else { return nil }
        var tuple = text[values.upperBound...].filter { !$0.isWhitespace }
        guard tuple.hasPrefix("("), tuple.hasSuffix(")") else { return nil }
        tuple = String(tuple.dropFirst().dropLast())
        let parameters = tuple.split(separator: ",", omittingEmptySubsequences: false)
        guard !parameters.isEmpty else { return nil }
        for (position, parameter) in parameters.enumerated() where parameter != "$\(position + 1)" { return nil }
        return Template(head: head, parameters: parameters.count)
    }

    private static func text(_ sql: String, _ template: Template, rows: Int) -> String {
        let key = "\(rows)\u{1}\(sql)"
        if let known = texts.withLock({ $0[key] }) { return known }
        var text = template.head
        for row in 0..<rows {
            text += row == 0 ? " (" : ", ("
            for column in 0..<template.parameters {
                if column > 0 { text += ", " }
                text += "$\(row * template.parameters + column + 1)"
            }
            text += ")"
        }
        texts.withLock { cache in
            if cache.count < 4096 { cache[key] = text }
        }
        return text
    }
}
