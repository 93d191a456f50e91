// SagaTrace: the timeline of one saga (every message with a correlation id, across services),
// with what each consuming service did with it: handled (from its inbox), dead (from its dead
// stream), pending/retrying (from the group's pending list), ignored (no handler), or not yet.
//
// Where the history comes from, and why: the streams themselves hold every message (until
// MAXLEN trims them), and XRANGE by time is cheap, so the saga's messages are found by scanning
// the saga's time window of each stream for its correlation id. Each service's inbox already
// records every message whose effect committed (a primary-key lookup by message id), so no
// extra trace table is written on the hot path. Retries that later succeeded leave no count
// behind; dead letters keep their delivery count.

import Choreo
import ChoreoJSON
import Foundation
import Postgres
import Redis

/// The timeline of a saga.
public struct SagaTrace: Codable, Sendable {
    /// What one service did with one message.
    public struct Handling: Codable, Sendable, Equatable {
        public var service: String
        /// `handled`, `dead`, `retrying`, `pending`, `ignored`, `not delivered`, `unknown`.
        public var outcome: String
        /// When it was handled or dead-lettered (ms since epoch).
        public var at: Int64?
        public var deliveries: Int?
        public var error: String?
    }

    /// One message of the saga.
    public struct Step: Codable, Sendable {
        public var stream: String
        public var entry: String
        public var type: String
        public var id: String
        public var causation: String
        public var at: Int64
        public var replays: Int
        /// Its W3C traceparent (the trace id is the request's; the span id is this message's).
        public var traceparent: String
        public var handlings: [Handling]
        /// For a delayed message: when it was due (ms since the epoch; `at` is when it was
        /// scheduled).
        public var due: Int64? = nil
        /// When the saga's deadline falls, if the payload says (a top-level `deadlineAt`, ms
        /// since the epoch, as the reference shop's OrderPlaced carries).
        public var deadlineAt: Int64? = nil
    }

    /// The correlation id traced.
    public var correlation: String
    /// The command that started the saga, as its status record shows it.
    public var command: [String: String]?
    public var steps: [Step]

    /// A payload's top-level `deadlineAt` (ms since the epoch), if it has one.
    static func deadline(in data: String?) -> Int64? {
        guard let data, data.contains("\"deadlineAt\""),
            case .object(let fields) = try? JSONValue.parse(data), let value = fields["deadlineAt"]
        else { return nil }
        switch value {
        case .integer(let milliseconds): return milliseconds
        case .number(let milliseconds): return Int64(milliseconds)
        default: return nil
        }
    }

    /// Builds the trace of `correlation`. `postgres` reads the inboxes as an operator (nil:
    /// outcomes from Redis only); `handles(service, type)` tells whether a service has a handler
    /// for a type (nil: assume it does). Scans at most `window` seconds after the start.
    public static func build(
        correlation: String, topology: Topology, redis: RedisConnection, postgres: PostgresConnection?,
        handles: ((String, String) -> Bool)? = nil, window: Double = 3600
    ) throws -> SagaTrace {
        let record = try redis.command(["HGETALL", Topology.commandKey(correlation)]).fieldMap.compactMapValues(
            \.string)
        let command = record.isEmpty ? nil : record
        let now = Envelope.nowMilliseconds()
        let submitted = record["submittedAt"].flatMap { Int64($0) }
        // From the submission (or `window` ago) to `window` later (or now).
        let start = (submitted ?? (now - Int64(window * 1000))) - 1000
        let end = submitted.map { $0 + Int64(window * 1000) } ?? (now + 1000)
        var streams: [String] = []
        for service in topology.services {
            for stream in ([service.commandStream, service.eventStream] + service.publishes + service.subscribes)
                .flatMap(topology.keys(of:))
            where !streams.contains(stream) {
                streams.append(stream)
            }
        }
        var steps: [Step] = []
        for stream in streams {
            var from = String(start)
            scan: while true {
                let page = try redis.xrange(stream, start: from, end: String(end), count: 1000)
                for entry in page where entry["correlation"] == correlation {
                    steps.append(
                        Step(
                            stream: stream, entry: entry.id, type: entry["type"] ?? "", id: entry["id"] ?? "",
                            causation: entry["causation"] ?? "", at: Int64(entry["at"] ?? "") ?? entry.milliseconds,
                            replays: Int(entry["replays"] ?? "") ?? 0, traceparent: entry["traceparent"] ?? "",
                            handlings: [], due: entry["due"].flatMap { Int64($0) },
                            deadlineAt: Self.deadline(in: entry["data"])))
                }
                guard page.count == 1000, let last = page.last else { break scan }
                from = "(" + last.id
            }
        }
        // A delayed message takes its place at its due time (it was published then).
        steps.sort { ($0.due ?? $0.at, $0.entry) < ($1.due ?? $1.at, $1.entry) }

        // Dead letters of the saga, per service.
        var dead: [String: [DeadLetter]] = [:]
        for service in topology.services {
            let letters = try redis.xrange(service.deadStream, start: String(start), end: "+", count: 10_000)
                .map(DeadLetter.init(entry:)).filter { $0.entry["correlation"] == correlation }
            dead[service.name] = letters
        }
        // Inbox rows of the saga's message ids, per service.
        var handled: [String: [String: Int64]] = [:]
        let ids = Array(Set(steps.map(\.id)))
        if let postgres, !ids.isEmpty {
            for service in topology.services {
                guard let schema = service.schema else { continue }
                let rows = try? postgres.query(
                    "SELECT message_id, (extract(epoch FROM processed_at) * 1000)::bigint AS at FROM \(schema).inbox WHERE message_id = ANY($1)",
                    [ids])
                var found: [String: Int64] = [:]
                for row in rows?.rows ?? [] {
                    found[try row.decode(String.self, "message_id")] = try row.decode(Int64.self, "at")
                }
                handled[service.name] = found
            }
        }
        for index in steps.indices {
            let step = steps[index]
            let consumers =
                topology.services.first { $0.isCommandStream(step.stream) }.map { [$0] }
                ?? topology.consumers(of: step.stream)
            for service in consumers {
                if let letter = dead[service.name]?.last(where: {
                    $0.entry["id"] == step.id && $0.stream == step.stream
                }) {
                    steps[index].handlings.append(
                        Handling(
                            service: service.name, outcome: "dead", at: letter.deadAtMilliseconds,
                            deliveries: letter.deliveryCount, error: letter.errorText))
                } else if let at = handled[service.name]?[step.id] {
                    steps[index].handlings.append(Handling(service: service.name, outcome: "handled", at: at))
                } else if let pending =
                    (try? redis.xpending(
                        step.stream, group: service.name, start: step.entry, end: step.entry, count: 1))?.first
                {
                    steps[index].handlings.append(
                        Handling(
                            service: service.name, outcome: pending.deliveries > 1 ? "retrying" : "pending",
                            deliveries: pending.deliveries))
                } else if let handles, !handles(service.name, step.type) {
                    steps[index].handlings.append(Handling(service: service.name, outcome: "ignored"))
                } else if service.schema == nil || postgres == nil {
                    steps[index].handlings.append(Handling(service: service.name, outcome: "unknown"))
                } else {
                    steps[index].handlings.append(Handling(service: service.name, outcome: "not delivered"))
                }
            }
        }
        return SagaTrace(correlation: correlation, command: command, steps: steps)
    }
}
