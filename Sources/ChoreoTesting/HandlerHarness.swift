// HandlerHarness: runs one service's handlers on single messages against a real Postgres schema
// of its own (migrated for the test), with no Redis and no worker process, and returns what each
// message committed: its outcome, the events, commands and result it emitted.

import Choreo
import Foundation
import Postgres
import Redis

/// A service's handlers under test, message by message.
///
/// The message goes through the worker's own batch path (inbox row, a savepoint per message,
/// queued writes, outbox rows, one commit), so a handler that throws rolls back its writes
/// and a repeated message id is a duplicate, exactly as in production. Only the transport is
/// missing: the emitted messages are returned instead of published.
///
/// ```swift
/// let harness = try HandlerHarness(Inventory.service())
/// let handled = try harness.handle(OrderPlaced(orderId: order, userId: user, items: items))
/// let reserved = try #require(handled.event(StockReserved.self))
/// #expect(try harness.query("SELECT stock FROM products").first?.decode(Int.self, "stock") == 3)
/// ```
public final class HandlerHarness {
    /// The service under test.
    public let service: Service
    /// Its definition (schema, subscriptions, policy).
    public let definition: ServiceDefinition
    /// The schema created for this harness.
    public let schema: String
    private let connection: PostgresConnection
    private let runner: HandlerRunner

    /// Why the harness refuses a run.
    public struct HarnessError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Creates a schema of its own for `service` on `databaseURL` (the test database by
    /// default), runs the runtime's and the service's migrations in it, and connects with the
    /// schema on the search path, as a worker does. `topology` names the query types (GET
    /// routes), which are handled without an inbox row.
    public init(
        _ service: Service, definition: ServiceDefinition? = nil, topology: Topology? = nil,
        databaseURL: String = TestEnvironment.databaseURL
    ) throws {
        let schema = TestEnvironment.uniqueName(service.name.filter { $0.isLetter || $0.isNumber }.lowercased())
        var definition = definition ?? topology?.service(service.name) ?? ServiceDefinition(name: service.name)
        definition.schema = schema
        self.service = service
        self.definition = definition
        self.schema = schema
        let admin = try PostgresConnection(url: databaseURL)
        try admin.execute("CREATE SCHEMA \(schema)")
        _ = try RuntimeSchema.migrate(schema: schema, service: service, on: admin)
        connection = try PostgresConnection(
            url: databaseURL, searchPath: [schema, "public"], settings: definition.policy.postgresSessionSettings
        )
        var services = topology?.services.filter { $0.name != service.name } ?? []
        services.append(definition)
        let topology = Topology(services: services, routes: topology?.routes ?? [])
        runner = HandlerRunner(definition: definition, service: service, topology: topology, postgres: connection)
    }

    deinit {
        _ = try? connection.execute("DROP SCHEMA \(schema) CASCADE")
    }

    /// Handles `message` (a command on the service's commands stream, an event on the first
    /// stream it consumes, or `stream`), as delivery number `attempt`.
    @discardableResult
    public func handle<M: MessageContract>(
        _ message: M, id: String = Envelope.newID(), correlation: String? = nil, attempt: Int = 1,
        from stream: String? = nil
    ) throws -> HandledMessage {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = String(decoding: try encoder.encode(message), as: UTF8.self)
        let defaultStream = message is any EventContract ? definition.subscribes.first : nil
        return try handle(
            type: M.messageType, data: data, id: id, correlation: correlation, attempt: attempt,
            from: stream ?? defaultStream ?? definition.commandStream)
    }

    /// Handles a raw payload (for malformed input: what a consumer does with a payload that
    /// does not decode).
    @discardableResult
    public func handle(
        type: String, data: String, id: String = Envelope.newID(), correlation: String? = nil, attempt: Int = 1,
        from stream: String? = nil
    ) throws -> HandledMessage {
        let envelope = Envelope(id: id, type: type, data: data, correlation: correlation)
        let run = try runner.run(envelope, stream: stream ?? definition.commandStream, attempt: attempt)
        let handled = HandledMessage(run, service: definition)
        try checkDeclared(handled)
        return handled
    }

    /// The delayed messages the handlers scheduled and that are still pending, soonest first.
    public func scheduled() throws -> [ScheduledEntry] {
        try Scheduler.list(postgres: connection, schema: schema)
    }

    /// Delivers the scheduled message `id` now, as the scheduler would when it is due (the
    /// row goes; the entry carries its `due` field), to this service's handlers. A message
    /// scheduled for another service's stream cannot be handled here: it is a test error.
    @discardableResult
    public func deliverScheduled(_ id: String, attempt: Int = 1) throws -> HandledMessage {
        guard
            let row = try connection.query(
                """
                DELETE FROM \(schema).scheduled WHERE id = $1
                RETURNING stream, fields, (extract(epoch FROM due_at) * 1000)::bigint AS due
                """, [id]
            ).first
        else { throw HarnessError(description: "no scheduled message \(id)") }
        let stream = try row.decode(String.self, "stream")
        guard stream == definition.commandStream || definition.subscribes.contains(stream) else {
            throw HarnessError(
                description: "scheduled message \(id) goes to \(stream), which \(service.name) does not read")
        }
        var fields = OutboxMessage.decodeFields(try row.decode(String.self, "fields"))
        fields.append(StreamField("due", String(try row.decode(Int64.self, "due"))))
        let envelope = try Envelope(entry: StreamEntry(id: "0-1", fields: fields))
        let run = try runner.run(envelope, stream: stream, attempt: attempt)
        let handled = HandledMessage(run, service: definition)
        try checkDeclared(handled)
        return handled
    }

    /// Runs `sql` on the service's schema now (arrange state, read it back).
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws -> PostgresResult {
        try connection.query(sql, parameters)
    }

    /// An emitted event or command whose contract the service does not declare
    /// (``Service/publishes(_:)``, ``Service/sends(_:to:)``) is a test failure: the contract
    /// check could not see it.
    private func checkDeclared(_ handled: HandledMessage) throws {
        for event in handled.events where service.publishedContracts[event.type] == nil {
            throw HarnessError(
                description: "\(service.name) published \(event.type) without declaring it (service.publishes)")
        }
        for command in handled.commands where service.sentContracts[command.type] == nil {
            throw HarnessError(
                description:
                    "\(service.name) sent \(command.type) to \(command.service) without declaring it (service.sends)")
        }
    }
}

/// What one message committed.
public struct HandledMessage: Sendable {
    /// A message the handler emitted.
    public struct Message: Sendable, Equatable {
        /// The envelope's type.
        public var type: String
        /// The JSON payload.
        public var data: String
        /// For commands: the target service.
        public var service: String

        /// The payload decoded as `T`.
        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(data.utf8))
        }
    }

    /// The command result it recorded.
    public struct Result: Sendable, Equatable {
        /// `succeeded` or `failed`.
        public var status: CommandStatus
        /// The result's type (the command's, or the one the handler named).
        public var type: String
        /// The JSON result (for `failed`: `{code, reason}`).
        public var data: String

        /// The result decoded as `T`.
        public func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(data.utf8))
        }
    }

    /// handled, rejected, duplicate, ignored, failed (retried) or poison (dead-lettered).
    public var outcome: MessageOutcome
    /// What the runtime does next: acked, retrying with its delay, or dead.
    public var state: MessageState
    /// Events on the service's events stream, in order.
    public var events: [Message]
    /// Commands to other services, in order.
    public var commands: [Message]
    /// The command result, if the handler recorded one.
    public var result: Result?

    init(_ run: HandlerRunner.Run, service: ServiceDefinition) {
        outcome = run.outcome
        state = run.state
        events = []
        commands = []
        for message in run.published {
            let type = message["type"] ?? ""
            let data = message["data"] ?? ""
            if message.stream == Topology.resultsStream {
                result = Result(status: message.status ?? .failed, type: type, data: data)
            } else if message.stream == service.eventStream {
                events.append(Message(type: type, data: data, service: service.name))
            } else {
                let target = message.stream.replacingOccurrences(of: ".commands", with: "")
                    .trimmingCharacters(in: CharacterSet(charactersIn: "{}"))
                commands.append(Message(type: type, data: data, service: target))
            }
        }
    }

    /// The first emitted event of contract `E`, decoded.
    public func event<E: EventContract>(_ type: E.Type) throws -> E? {
        try events.first { $0.type == E.messageType }?.decode(E.self)
    }

    /// The types of the emitted events, in order.
    public var eventTypes: [String] { events.map(\.type) }

    /// The succeeded result decoded as `T` (nil if there is none or it failed).
    public func succeeded<T: Decodable>(_ type: T.Type) throws -> T? {
        guard let result, result.status == .succeeded else { return nil }
        return try result.decode(T.self)
    }

    /// The `code` of a failed result (a business rejection), if any.
    public var rejectionCode: String? {
        guard let result, result.status == .failed else { return nil }
        return (try? result.decode([String: String].self))?["code"]
    }

    /// The `reason` of a failed result, if any.
    public var rejectionReason: String? {
        guard let result, result.status == .failed else { return nil }
        return (try? result.decode([String: String].self))?["reason"]
    }
}
