// OutboxMessage: one emitted message on its way to Redis: built from a handler's emission,
// stored in the outbox table, turned into Redis commands by the publisher.

import ChoreoJSON
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
            // A partitioned stream's partition is picked when the message is published.
            self.stream = service.eventStream
            self.fields = envelope(type, data).fields
        case .command(let target, let type, let data):
            // The target's commands stream as its consumers read it (hash-tagged).
            self.stream = ServiceDefinition(name: target).commandStream
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

    /// The `stream` of an outbox row that holds a whole batch of messages.
    static let batchRow = "*"

    /// Encodes messages for one outbox row (``batchRow``): a JSON array of arrays
    /// `[stream, command id, status, name, value, ...]` (empty strings for no command id or
    /// status). One row per committed batch keeps the outbox's cost per batch, not per message.
    static func encodeBatch(_ messages: [OutboxMessage]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(messages.count * 512)
        for (index, message) in messages.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "["))
            JSONText.appendQuoted(message.stream, to: &out)
            out.append(UInt8(ascii: ","))
            JSONText.appendQuoted(message.commandID ?? "", to: &out)
            out.append(UInt8(ascii: ","))
            JSONText.appendQuoted(message.status?.rawValue ?? "", to: &out)
            for field in message.fields {
                out.append(UInt8(ascii: ","))
                JSONText.appendQuoted(field.name, to: &out)
                out.append(UInt8(ascii: ","))
                JSONText.appendQuoted(field.value, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes an outbox row: a batch row (see ``encodeBatch(_:)``) or a single message; nil
    /// if a batch row is not valid.
    static func decodeRow(stream: String, fields: String, commandID: String?, status: String?) -> [OutboxMessage]? {
        guard stream == batchRow else {
            return [
                OutboxMessage(
                    stream: stream, fields: decodeFields(fields), commandID: commandID,
                    status: status.flatMap(CommandStatus.init(rawValue:)), seq: nil)
            ]
        }
        guard let data = fields.data(using: .utf8), let list = try? JSONDecoder().decode([[String]].self, from: data),
            list.allSatisfy({ $0.count >= 3 && $0.count % 2 == 1 })
        else { return nil }
        return list.map { flat in
            let rest = Array(flat[3...])
            return OutboxMessage(
                stream: flat[0],
                fields: stride(from: 0, to: rest.count - 1, by: 2).map { StreamField(rest[$0], rest[$0 + 1]) },
                commandID: flat[1].isEmpty ? nil : flat[1], status: CommandStatus(rawValue: flat[2]), seq: nil)
        }
    }

    /// Rebuilds fields from a single-message row's JSON array `[name, value, ...]`.
    package static func decodeFields(_ text: String) -> [StreamField] {
        guard let flat = JSONText.decodeArray(text) else { return [] }
        return stride(from: 0, to: flat.count - 1, by: 2).map { StreamField(flat[$0], flat[$0 + 1]) }
    }

    /// The value of field `name`.
    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }
}
