// Publisher: turns outbox messages, acks and dead letters into Redis commands, pipelined in an
// order where a crash leaves duplicates, never losses (publish before ack, dead before ack).

import Foundation
import Redis

/// Builds the Redis commands that publish, acknowledge and dead-letter, for one service.
public struct Publisher: Sendable {
    /// The publishing service.
    public let service: ServiceDefinition
    /// Cap of `choreo.results`.
    public let resultsMaxLength: Int
    /// Lifetime of `choreo:command:{id}`, in seconds.
    public let commandTTL: Int
    /// The service's query types: their reply records live ``Topology/queryReplyTTL`` only.
    public let queryTypes: Set<String>
    /// The partitioned streams, by stream: a message for one goes to its key's partition.
    let partitioned: [String: StreamPartitioning]

    /// Creates a publisher.
    public init(service: ServiceDefinition, topology: Topology) {
        self.service = service
        self.partitioned = Dictionary(
            topology.partitionings.map { ($0.stream, $0) }, uniquingKeysWith: { first, _ in first })
        self.resultsMaxLength = topology.resultsMaxLength
        self.commandTTL = Int(topology.commandTTL)
        self.queryTypes = topology.queryTypes(of: service.name)
    }

    /// Commands publishing `message`: an XADD, preceded for results by the command hash update.
    public func commands(for message: OutboxMessage) -> [[String]] {
        guard let commandID = message.commandID, let status = message.status else {
            // No MAXLEN: a stream is trimmed only below what every group acknowledged
            // (StreamRetention, run by the owner's maintenance).
            return [RedisConnection.xaddArguments(stream(of: message), fields: message.fields)]
        }
        let key = Topology.commandKey(commandID)
        let payloadField = status == .succeeded ? "result" : "error"
        return [
            [
                "HSET", key, "status", status.rawValue, payloadField, message["data"] ?? "{}", "completedAt",
                message["at"] ?? String(Envelope.nowMilliseconds()), "resultType", message["type"] ?? "",
            ],
            ["EXPIRE", key, String(queryTypes.contains(message["type"] ?? "") ? Topology.queryReplyTTL : commandTTL)],
            RedisConnection.xaddArguments(Topology.resultsStream, fields: message.fields, maxLength: resultsMaxLength),
        ]
    }

    /// The stream `message` is written to: its own, or its key's partition of a partitioned
    /// stream. The one place messages are routed: every emitted, relayed, delayed and deferred
    /// message is written through it.
    func stream(of message: OutboxMessage) -> String {
        guard !partitioned.isEmpty, let partitioning = partitioned[message.stream] else { return message.stream }
        return partitioning.key(for: message.fields)
    }

    /// Commands that copy `entry` to the dead-letter stream with the reason, and, when it is
    /// the command that started a saga, mark the command `dead`.
    public func deadLetterCommands(
        entry: StreamEntry, stream: String, consumer: String, deliveries: Int, reason: String, envelope: Envelope?
    ) -> [[String]] {
        var fields = entry.fields.filter { !DeadLetter.metadataFields.contains($0.name) }
        fields += [
            StreamField(DeadLetter.sourceStream, stream), StreamField(DeadLetter.sourceID, entry.id),
            StreamField(DeadLetter.group, service.name), StreamField(DeadLetter.consumer, consumer),
            StreamField(DeadLetter.deliveries, String(deliveries)),
            StreamField(DeadLetter.error, Self.bounded(reason)),
            StreamField(DeadLetter.deadAt, String(Envelope.nowMilliseconds())),
        ]
        var commands = [
            // Dead letters are never trimmed: an operator replays or purges them.
            RedisConnection.xaddArguments(service.deadStream, fields: fields)
        ]
        if let envelope, service.isCommandStream(stream), envelope.correlation == envelope.id {
            let data = MessageContext.jsonObject(["code": "dead", "reason": reason])
            let result = OutboxMessage.result(
                commandID: envelope.id, status: .dead, type: envelope.type, data: data, causation: envelope.id,
                traceparent: envelope.childTraceparent())
            commands += self.commands(for: result)
        } else if let envelope, envelope.correlation != envelope.id, !envelope.correlation.isEmpty {
            // A message of a saga (caused by a command) is dead: the saga cannot go on, so its
            // command, if still `accepted`, becomes `dead` with the reason (client and console
            // see it instead of waiting forever). A command already decided keeps its outcome.
            let data = MessageContext.jsonObject([
                "code": "dead",
                "reason": "\(envelope.type) was dead-lettered by \(service.name): \(reason)",
            ])
            let result = OutboxMessage.result(
                commandID: envelope.correlation, status: .dead, type: envelope.type, data: data,
                causation: envelope.id, traceparent: envelope.childTraceparent())
            // The record (by command id) and the results stream are in different slots: the
            // script decides on the record alone; the results entry is a wake-up for waiting
            // clients, who read the record (a command already decided keeps its outcome).
            commands.append([
                "EVAL", Self.sagaDeadScript, "1", Topology.commandKey(envelope.correlation), data,
                result["at"] ?? String(Envelope.nowMilliseconds()), envelope.type, String(commandTTL),
            ])
            commands.append(
                RedisConnection.xaddArguments(
                    Topology.resultsStream, fields: result.fields, maxLength: resultsMaxLength))
        }
        return commands
    }

    /// A dead letter's reason, at most 4,000 characters; a longer one says how much was left out
    /// (never cut silently).
    static func bounded(_ reason: String) -> String {
        guard reason.count > 4000 else { return reason }
        return String(reason.prefix(4000)) + "… (\(reason.count - 4000) more characters not kept)"
    }

    /// Marks a still-`accepted` command `dead`; leaves a decided (or unknown) command alone.
    /// KEYS: the command's record; ARGV: error, completedAt, resultType, TTL.
    static let sagaDeadScript = """
        if redis.call('HGET', KEYS[1], 'status') ~= 'accepted' then return 0 end
        redis.call('HSET', KEYS[1], 'status', 'dead', 'error', ARGV[1], 'completedAt', ARGV[2], 'resultType', ARGV[3])
        redis.call('EXPIRE', KEYS[1], ARGV[4])
        return 1
        """
}
