// OutboxMessage: one emitted message on its way to Redis: built from a handler's emission,
// stored in the outbox table, turned into Redis commands by the publisher.

import Foundation
import Redis

/// A message waiting in the outbox: the stream it goes to and its fields; for command results
/// also the command id and status (the publisher updates `choreo:command:{id}` too).
public struct OutboxMessage: Sendable, Equatable {
    /// Target stream.
    public var stream: String
    /// Stream entry fields.
    public var fields: [StreamField]
    /// For results: the command id (the saga's correlation).
    public var commandID: String?
    /// For results: the outcome.
    public var status: CommandStatus?
    /// The outbox row's sequence number once stored.
    public var seq: Int64?

    /// Builds the outbox message for `emission`, caused by `cause` in `service`. `traceparent`
    /// is the handling span's context when a tracer records it (the emitted messages are its
    /// children); otherwise each message gets a new span id in the cause's trace.
    public init(_ emission: Emission, cause: Envelope, service: ServiceDefinition, traceparent: String? = nil) {
        func envelope(_ type: String, _ data: String) -> Envelope {
            Envelope(
                type: type, data: data, correlation: cause.correlation, causation: cause.id,
                traceparent: traceparent ?? cause.childTraceparent())
        }
        switch emission {
        case .event(let type, let data):
            self.stream = service.eventStream
            self.fields = envelope(type, data).fields
        case .command(let target, let type, let data):
            self.stream = "\(target).commands"
            self.fields = envelope(type, data).fields
        case .result(let status, let type, let data):
            self = OutboxMessage.result(
                commandID: cause.correlation, status: status, type: type, data: data, causation: cause.id,
                traceparent: traceparent ?? cause.childTraceparent())
        }
    }

    init(stream: String, fields: [StreamField], commandID: String?, status: CommandStatus?, seq: Int64?) {
        self.stream = stream
        self.fields = fields
        self.commandID = commandID
        self.status = status
        self.seq = seq
    }

    /// A command result for `choreo.results`.
    public static func result(
        commandID: String, status: CommandStatus, type: String, data: String, causation: String, traceparent: String
    ) -> OutboxMessage {
        let fields = [
            StreamField("id", Envelope.newID()), StreamField("command", commandID),
            StreamField("status", status.rawValue), StreamField("type", type), StreamField("data", data),
            StreamField("causation", causation), StreamField("traceparent", traceparent),
            StreamField("at", String(Envelope.nowMilliseconds())),
        ]
        return OutboxMessage(
            stream: Topology.resultsStream, fields: fields, commandID: commandID, status: status, seq: nil)
    }

    /// The fields as a JSON array `[name, value, ...]` for the outbox table.
    var encodedFields: String {
        JSONText.array(fields.flatMap { [$0.name, $0.value] })
    }

    /// Rebuilds fields from the outbox table's JSON.
    static func decodeFields(_ text: String) -> [StreamField] {
        guard let flat = JSONText.decodeArray(text) else { return [] }
        return stride(from: 0, to: flat.count - 1, by: 2).map { StreamField(flat[$0], flat[$0 + 1]) }
    }

    /// The value of field `name`.
    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }
}
