// MessageContext: what a handler gets with a message: the envelope, its payload, the service's
// transaction, a logger with the message's ids, the attempt number, and the ways to emit.

import Foundation
import Logging
import Postgres

/// The context of one message being handled.
///
/// State changes go through ``execute(_:_:)`` (queued and pipelined at commit: the fast path)
/// or ``query(_:_:)`` (run now, for reads and writes whose result you need). Both run in the
/// batch's transaction together with the inbox row and the outbox rows, so the effect and the
/// messages it emits commit atomically. Emitted messages are published after the commit.
public final class MessageContext {
    /// The message.
    public let envelope: Envelope
    /// The service handling it.
    public let service: String
    /// The stream it was read from.
    public let stream: String
    /// 1 for the first delivery, 2 for the first retry, ...
    public let attempt: Int
    /// The consumer (process) handling it.
    public let consumer: String
    /// A logger carrying service, message id, type, correlation and trace ids (built on first use).
    public lazy var logger: Logger = {
        var logger = baseLogger
        logger[metadataKey: "message_id"] = "\(envelope.id)"
        logger[metadataKey: "type"] = "\(envelope.type)"
        logger[metadataKey: "correlation_id"] = "\(envelope.correlation)"
        if let trace = envelope.traceID { logger[metadataKey: "trace_id"] = "\(trace)" }
        if let span = envelope.spanID { logger[metadataKey: "span_id"] = "\(span)" }
        return logger
    }()
    private let baseLogger: Logger
    private let coders: JSONCoders
    let session: TransactionSession?
    private(set) var emissions: [Emission] = []
    private(set) var rejected = false
    /// Messages scheduled by this handler (written to its transaction's queue, in one
    /// statement per run of schedules: see ``flushSchedules()``).
    private(set) var scheduled: [ScheduledMessage] = []
    /// How many of ``scheduled`` are queued already.
    private var queuedSchedules = 0
    /// Scheduled messages this handler cancelled.
    private(set) var cancelled: [String] = []
    /// The service's schema (where scheduled messages are kept).
    let schema: String?
    /// The handling span's traceparent when a tracer records spans (emitted messages carry it).
    var spanTraceparent: String?

    init(
        envelope: Envelope, service: String, stream: String, attempt: Int, consumer: String, logger: Logger,
        session: TransactionSession?, schema: String? = nil, coders: JSONCoders = JSONCoders()
    ) {
        self.coders = coders
        self.schema = schema
        self.envelope = envelope
        self.consumer = consumer
        self.service = service
        self.stream = stream
        self.attempt = attempt
        self.baseLogger = logger
        self.session = session
    }

    /// Decodes the JSON payload. A payload that does not decode is poison: the message is
    /// dead-lettered at once with the decoding error as its reason.
    public func payload<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try coders.decoder.decode(T.self, from: Data(envelope.data.utf8))
        } catch {
            // A contract is named by its wire type (a generic contract's Swift name says less).
            let expected = (T.self as? any MessageContract.Type)?.messageType ?? "\(T.self)"
            throw HandlerError.poison(
                "payload of \(envelope.type) does not decode as \(expected): \(Self.describe(error))")
        }
    }

    /// Queues a write; it is sent with the commit, pipelined with the other messages' writes.
    public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws {
        guard let session else { throw ContextError.noSchema(service) }
        flushSchedules()
        session.enqueue(PostgresStatement(sql, parameters))
    }

    /// Runs a statement now and returns its rows (queued writes are sent first).
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws -> PostgresResult {
        guard let session else { throw ContextError.noSchema(service) }
        flushSchedules()
        return try session.query(sql, parameters)
    }

    /// Publishes an event on the service's events stream.
    public func publish<T: Encodable>(_ type: String, _ payload: T) throws {
        emissions.append(.event(type: type, data: try coders.json(payload)))
    }

    /// Sends a command to another service's commands stream.
    public func send<T: Encodable>(_ type: String, _ payload: T, to service: String) throws {
        emissions.append(.command(service: service, type: type, data: try coders.json(payload)))
    }

    /// Publishes `event` on the service's events stream under its contract's type.
    public func publish<E: EventContract>(_ event: E) throws {
        try publish(E.messageType, event)
    }

    /// Sends `command` to `service`'s commands stream under its contract's type.
    public func send<C: CommandContract>(_ command: C, to service: String) throws {
        try send(C.messageType, command, to: service)
    }

    // MARK: Delayed messages

    /// Publishes `event` on the service's events stream `delay` after this transaction commits
    /// (the database's clock). Returns the message's id, to cancel it by. `id` names it
    /// yourself (unique in the service, at most 64 characters; scheduling an id that is still
    /// scheduled keeps the first), e.g. `deadline-\(orderId)`.
    @discardableResult
    public func publish<E: EventContract>(_ event: E, after delay: Duration, id: String? = nil) throws -> String {
        try schedule(
            stream: ServiceDefinition(name: service).eventStream, type: E.messageType, payload: event, dueAt: nil,
            delay: delay, id: id)
    }

    /// Publishes `event` on the service's events stream at `date` (at once if it is past).
    @discardableResult
    public func publish<E: EventContract>(_ event: E, at date: Date, id: String? = nil) throws -> String {
        try schedule(
            stream: ServiceDefinition(name: service).eventStream, type: E.messageType, payload: event,
            dueAt: Int64(date.timeIntervalSince1970 * 1000), delay: .zero, id: id)
    }

    /// Sends `command` to `service`'s commands stream `delay` after this transaction commits.
    /// Returns the message's id, to cancel it by (see ``publish(_:after:id:)``).
    @discardableResult
    public func send<C: CommandContract>(_ command: C, to service: String, after delay: Duration, id: String? = nil)
        throws -> String
    {
        try schedule(
            stream: ServiceDefinition(name: service).commandStream, type: C.messageType, payload: command, dueAt: nil,
            delay: delay, id: id)
    }

    /// Sends `command` to `service`'s commands stream at `date` (at once if it is past).
    @discardableResult
    public func send<C: CommandContract>(_ command: C, to service: String, at date: Date, id: String? = nil) throws
        -> String
    {
        try schedule(
            stream: ServiceDefinition(name: service).commandStream, type: C.messageType, payload: command,
            dueAt: Int64(date.timeIntervalSince1970 * 1000), delay: .zero, id: id)
    }

    /// Cancels a message this service scheduled, in this transaction: once it commits, the
    /// message is not published. No effect on a message already published or never scheduled.
    public func cancelScheduled(_ id: String) throws {
        guard let session, let schema else { throw ContextError.noSchema(service) }
        flushSchedules()
        session.enqueue(PostgresStatement(RuntimeSchema.scheduleCancel(schema), [id]))
        cancelled.append(id)
    }

    private func schedule<T: Encodable>(
        stream: String, type: String, payload: T, dueAt: Int64?, delay: Duration, id: String?
    ) throws -> String {
        guard let session, let schema else { throw ContextError.noSchema(service) }
        if let id { try ScheduledMessage.validate(id: id) }
        guard delay >= .zero else {
            throw ScheduledMessage.Invalid(reason: "the delay of \(type) is negative (\(delay))")
        }
        let envelope = Envelope(
            id: id ?? Envelope.newID(), type: type, data: try coders.json(payload), correlation: envelope.correlation,
            causation: envelope.id, traceparent: spanTraceparent ?? envelope.childTraceparent())
        let milliseconds = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
        let message = ScheduledMessage(
            id: envelope.id, stream: stream, type: type, dueAt: dueAt, delay: milliseconds, fields: envelope.fields)
        scheduled.append(message)
        return message.id
    }

    /// Queues the schedules not yet queued as one statement (a handler scheduling a thousand
    /// messages sends one INSERT, not a thousand). Called before any other statement of the
    /// handler, so that its statements keep their order, and by the runtime when it returns.
    func flushSchedules() {
        guard queuedSchedules < scheduled.count, let session, let schema else { return }
        let run = scheduled[queuedSchedules...]
        queuedSchedules = scheduled.count
        session.enqueue(ScheduledMessage.insert(run, schema: schema))
    }

    /// Records the successful outcome of the command that started the saga.
    public func succeed<T: Encodable>(_ result: T, type: String? = nil) throws {
        emissions.append(.result(status: .succeeded, type: type ?? envelope.type, data: try coders.json(result)))
    }

    /// Records a business rejection (a `failed` result): acknowledged, not retried.
    public func reject(_ reason: String, code: String = "rejected", type: String? = nil) throws {
        rejected = true
        emissions.append(
            .result(
                status: .failed, type: type ?? envelope.type, data: try coders.json(["code": code, "reason": reason])))
    }

    /// Why a context operation is not possible.
    public enum ContextError: Error, CustomStringConvertible {
        /// The service has no schema, so there is no transaction.
        case noSchema(String)
        public var description: String {
            switch self {
            case .noSchema(let service): return "service '\(service)' has no schema: no database access"
            }
        }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        try JSONCoders().json(value)
    }

    static func jsonObject(_ value: [String: String]) -> String {
        (try? json(value)) ?? "{}"
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(let type, let context):
            return "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' is not \(type)"
        case DecodingError.valueNotFound(_, let context):
            return "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' is null"
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        default: return "\(error)"
        }
    }
}

/// A JSON encoder and decoder reused by one consumer thread (creating them per message is
/// measurable on Linux).
final class JSONCoders {
    let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
    let decoder = JSONDecoder()

    func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
