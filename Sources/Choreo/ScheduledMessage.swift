// ScheduledMessage: a delayed message a handler scheduled (or an operator lists): its id (the
// envelope id, the handle to cancel it by), when it is due, where it goes, and its fields.

import ChoreoJSON
import Foundation
import Postgres
import Redis

/// A message to be published later, kept in the service's `scheduled` table until due.
///
/// Scheduling is part of the handler's transaction: a rolled-back handler schedules nothing, a
/// committed one schedules exactly once. When due, the ``Scheduler`` publishes it (the stream
/// entry carries a `due` field) and moves it to the outbox's republish window.
public struct ScheduledMessage: Sendable, Equatable {
    /// The message's envelope id, unique in the service; the handle to cancel it by.
    public var id: String
    /// The stream it will be published to.
    public var stream: String
    /// Its message type.
    public var type: String
    /// When it is due, milliseconds since the epoch; `nil` when due after ``delay`` from the
    /// commit (the database's clock, so no process's clock skew can make it early).
    public var dueAt: Int64?
    /// With no ``dueAt``: the delay after the commit, in milliseconds.
    public var delay: Int64
    /// The envelope fields it will be published with.
    public var fields: [StreamField]

    /// Creates a scheduled message.
    public init(id: String, stream: String, type: String, dueAt: Int64?, delay: Int64, fields: [StreamField]) {
        self.id = id
        self.stream = stream
        self.type = type
        self.dueAt = dueAt
        self.delay = delay
        self.fields = fields
    }

    /// The fields as stored: a JSON array `[name, value, ...]`.
    var storedFields: String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendQuoted(field.name, to: &out)
            out.append(UInt8(ascii: ","))
            JSONText.appendQuoted(field.value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The statement that stores `messages` in `schema` (one statement for any number).
    static func insert(_ messages: some Collection<ScheduledMessage>, schema: String) -> PostgresStatement {
        PostgresStatement(
            RuntimeSchema.scheduleInsertMany(schema),
            [
                messages.map(\.id), messages.map { $0.dueAt.map(Double.init) ?? -1 }, messages.map { Double($0.delay) },
                messages.map(\.stream), messages.map(\.type), messages.map(\.storedFields),
            ])
    }

    /// Why a message cannot be scheduled.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        /// What is wrong.
        public var reason: String
        public var description: String { "cannot schedule: \(reason)" }
    }

    /// Checks a caller-chosen id: what an envelope id may be (1 to 64 characters, no control
    /// characters).
    static func validate(id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 64, !id.utf8.contains(where: { $0 < 0x20 }) else {
            throw Invalid(reason: "id '\(id)' must be 1 to 64 characters without control characters")
        }
    }
}

/// A scheduled message as an operator sees it (``Scheduler/list(postgres:schema:limit:)``).
public struct ScheduledEntry: Sendable, Equatable, Codable {
    /// The message's id.
    public var id: String
    /// Its type.
    public var type: String
    /// The stream it goes to.
    public var stream: String
    /// When it is due, milliseconds since the epoch.
    public var dueAt: Int64
    /// Its correlation (the saga it belongs to).
    public var correlation: String
}
