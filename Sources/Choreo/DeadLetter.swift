// DeadLetter: the fields the runtime adds to a message it moves to a dead-letter stream, and
// a typed view of a dead-letter entry for the operator tools.

import Redis

/// A dead-letter entry: the original message fields plus where it came from and why it died.
public struct DeadLetter: Sendable, Equatable {
    /// Field: the stream the message was read from.
    public static let sourceStream = "dead_stream"
    /// Field: its entry id there.
    public static let sourceID = "dead_entry"
    /// Field: the consumer group (the service).
    public static let group = "dead_group"
    /// Field: the consumer that gave up.
    public static let consumer = "dead_consumer"
    /// Field: how many times it was delivered.
    public static let deliveries = "dead_deliveries"
    /// Field: the last error or the poison reason.
    public static let error = "dead_error"
    /// Field: when it was dead-lettered (ms since epoch).
    public static let deadAt = "dead_at"
    /// Every metadata field name.
    public static let metadataFields: Set<String> = [
        sourceStream, sourceID, group, consumer, deliveries, error, deadAt,
    ]

    /// The entry in the dead-letter stream.
    public var entry: StreamEntry

    /// Wraps a dead-letter stream entry.
    public init(entry: StreamEntry) { self.entry = entry }

    /// The original message fields, without the metadata.
    public var originalFields: [StreamField] { entry.fields.filter { !Self.metadataFields.contains($0.name) } }
    /// The stream the message came from.
    public var stream: String { entry[Self.sourceStream] ?? "" }
    /// Its entry id there.
    public var sourceEntryID: String { entry[Self.sourceID] ?? "" }
    /// The message type, if present.
    public var type: String { entry["type"] ?? "" }
    /// Deliveries before it died.
    public var deliveryCount: Int { Int(entry[Self.deliveries] ?? "") ?? 0 }
    /// The error.
    public var errorText: String { entry[Self.error] ?? "" }
    /// When it died, ms since epoch.
    public var deadAtMilliseconds: Int64 { Int64(entry[Self.deadAt] ?? "") ?? entry.milliseconds }
}
