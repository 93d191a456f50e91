// Envelope: the flat stream fields every Choreo message carries, encoded and decoded.

import ChoreoJSON
import Foundation
import Redis

/// A message as it travels on a stream: flat fields readable with redis-cli.
///
/// `id` is stable across retries and replays and is the deduplication key; `correlation` is
/// the id of the command that started the saga; `causation` the id of the message that
/// caused this one.
public struct Envelope: Sendable, Equatable {
    /// Unique message id (UUID), the dedup key.
    public var id: String
    /// Message type, e.g. `PlaceOrder` or `OrderPlaced`.
    public var type: String
    /// JSON payload.
    public var data: String
    /// Id of the command that started the saga.
    public var correlation: String
    /// Id of the message that caused this one (its own id for a command from the gateway).
    public var causation: String
    /// W3C trace context (`00-{trace}-{span}-{flags}`).
    public var traceparent: String
    /// Creation time, milliseconds since the epoch.
    public var at: Int64
    /// Payload version.
    public var version: Int
    /// How many times an operator replayed it from the dead-letter stream.
    public var replays: Int
    /// For a scheduled (delayed) message: when it was due, milliseconds since the epoch.
    public var due: Int64?
    /// For a message a handler deferred (``HandlerError/notYet(_:code:)``): how often it was
    /// deferred, and when first (milliseconds since the epoch).
    public var deferrals: Int = 0
    /// When the message was first deferred (with ``deferrals`` > 0).
    public var deferredSince: Int64?

    /// Creates an envelope; `id` defaults to a new UUID, `correlation` and `causation` to it.
    public init(
        id: String = Envelope.newID(), type: String, data: String, correlation: String? = nil,
        causation: String? = nil, traceparent: String = Envelope.newTraceparent(),
        at: Int64 = Envelope.nowMilliseconds(), version: Int = 1, replays: Int = 0
    ) {
        self.id = id
        self.type = type
        self.data = data
        self.correlation = correlation ?? id
        self.causation = causation ?? id
        self.traceparent = traceparent
        self.at = at
        self.version = version
        self.replays = replays
    }

    /// Why an entry is not a valid envelope (the entry is poison).
    public struct DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The reason, e.g. `missing field 'type'`.
        public var reason: String
        /// Creates an error with `reason`.
        public init(reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// Decodes a stream entry. Throws ``DecodingError`` naming the first problem.
    public init(entry: StreamEntry) throws {
        var id: String?
        var type: String?
        var data: String?
        var correlation: String?
        var causation: String?
        var traceparent: String?
        var at: String?
        var version: String?
        var replays: String?
        var due: String?
        var deferrals: String?
        var deferredSince: String?
        for field in entry.fields {
            switch field.name {
            case "id": id = id ?? field.value
            case "type": type = type ?? field.value
            case "data": data = data ?? field.value
            case "correlation": correlation = correlation ?? field.value
            case "causation": causation = causation ?? field.value
            case "traceparent": traceparent = traceparent ?? field.value
            case "at": at = at ?? field.value
            case "v": version = version ?? field.value
            case "replays": replays = replays ?? field.value
            case "due": due = due ?? field.value
            case "deferrals": deferrals = deferrals ?? field.value
            case "deferred_since": deferredSince = deferredSince ?? field.value
            default: break
            }
        }
        guard let id, !id.isEmpty else { throw DecodingError(reason: "missing field 'id'") }
        guard id.utf8.count <= 64 else { throw DecodingError(reason: "field 'id' is longer than 64 characters") }
        for (name, value) in [("id", id), ("correlation", correlation), ("causation", causation)] {
            if let value, value.utf8.contains(where: { $0 < 0x20 }) {
                throw DecodingError(reason: "field '\(name)' contains a control character")
            }
        }
        guard let type, !type.isEmpty else { throw DecodingError(reason: "missing field 'type'") }
        guard type.utf8.count <= 128, type.utf8.allSatisfy(Self.isTypeByte) else {
            throw DecodingError(reason: "field 'type' is not a valid type name")
        }
        let payload = data ?? "{}"
        guard JSONText.isValid(payload) else { throw DecodingError(reason: "field 'data' is not valid JSON") }
        guard let milliseconds = Int64(at ?? "0") else { throw DecodingError(reason: "field 'at' is not a number") }
        guard let payloadVersion = Int(version ?? "1") else { throw DecodingError(reason: "field 'v' is not a number") }
        self.init(
            id: id, type: type, data: payload, correlation: correlation ?? id, causation: causation ?? id,
            traceparent: traceparent ?? "", at: milliseconds, version: payloadVersion, replays: Int(replays ?? "0") ?? 0
        )
        self.due = due.flatMap { Int64($0) }
        self.deferrals = deferrals.flatMap { Int($0) } ?? 0
        self.deferredSince = deferredSince.flatMap { Int64($0) }
    }

    private static func isTypeByte(_ byte: UInt8) -> Bool {
        (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte) || byte == 46 || byte == 95
            || byte == 45
    }

    /// The stream fields, in a fixed order.
    public var fields: [StreamField] {
        var fields = [
            StreamField("id", id), StreamField("type", type), StreamField("data", data),
            StreamField("correlation", correlation), StreamField("causation", causation),
            StreamField("traceparent", traceparent), StreamField("at", String(at)), StreamField("v", String(version)),
        ]
        if replays > 0 { fields.append(StreamField("replays", String(replays))) }
        if let due { fields.append(StreamField("due", String(due))) }
        if deferrals > 0 {
            fields.append(StreamField("deferrals", String(deferrals)))
            if let deferredSince { fields.append(StreamField("deferred_since", String(deferredSince))) }
        }
        return fields
    }

    /// The trace id part of ``traceparent`` (32 hex digits), if well-formed.
    public var traceID: String? { TraceParent(header: traceparent)?.traceID }

    /// The span id part of ``traceparent`` (16 hex digits): the span of this message, the
    /// parent of the spans of the messages its handling emits.
    public var spanID: String? { TraceParent(header: traceparent)?.spanID }

    /// A child traceparent: same trace, new span id.
    public func childTraceparent() -> String {
        guard let trace = traceID else { return Envelope.newTraceparent() }
        return "00-\(trace)-\(Envelope.randomHex(8))-01"
    }

    /// A new root traceparent.
    public static func newTraceparent() -> String {
        "00-\(randomHex(16))-\(randomHex(8))-01"
    }

    /// Milliseconds since the epoch, now.
    public static func nowMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// `bytes` random bytes as lowercase hex.
    public static func randomHex(_ bytes: Int) -> String {
        FastRandom.hex(bytes: bytes)
    }

    /// A new message id: a random UUID in lowercase text.
    public static func newID() -> String {
        FastRandom.uuid()
    }
}
