// StreamTypes: typed values read from Redis Streams replies (entries, pending lists, XINFO).

/// One field of a stream entry.
public struct StreamField: Sendable, Hashable {
    /// The field name.
    public var name: String
    /// The field value.
    public var value: String

    /// Creates a field.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One stream entry: its id and its fields in the order they were written.
public struct StreamEntry: Sendable, Hashable {
    /// The entry id, `ms-seq`.
    public var id: String
    /// The fields; empty for an entry deleted or trimmed while still pending.
    public var fields: [StreamField]
    /// Whether the entry was deleted or trimmed while pending (Redis returned no fields).
    public var isDeleted: Bool

    /// Creates an entry.
    public init(id: String, fields: [StreamField], isDeleted: Bool = false) {
        self.id = id
        self.fields = fields
        self.isDeleted = isDeleted
    }

    /// The value of the first field named `name`.
    public subscript(name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    /// The millisecond timestamp part of the id.
    public var milliseconds: Int64 {
        Int64(id.split(separator: "-").first ?? "") ?? 0
    }

    init(reply: RedisReply) throws {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string else {
            throw RedisError.unexpectedReply(command: "stream entry", reply: reply.description)
        }
        self.id = id
        guard let flat = parts[1].array else {
            self.fields = []
            self.isDeleted = true
            return
        }
        var fields: [StreamField] = []
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            fields.append(StreamField(flat[index].string ?? "", flat[index + 1].string ?? ""))
            index += 2
        }
        self.fields = fields
        self.isDeleted = false
    }

    static func list(_ reply: RedisReply) throws -> [StreamEntry] {
        guard let elements = reply.array else { return [] }
        return try elements.compactMap { element in
            element.isNull ? nil : try StreamEntry(reply: element)
        }
    }
}

/// The entries one `XREADGROUP`/`XREAD` returned for one stream.
public struct StreamBatch: Sendable, Hashable {
    /// The stream key.
    public var stream: String
    /// The entries, oldest first.
    public var entries: [StreamEntry]

    /// Parses an XREADGROUP/XREAD reply held as a ``RedisReply`` (an error reply is thrown).
    static func batches(from reply: RedisReply, command: String) throws -> [StreamBatch] {
        if case .error(let message) = reply { throw RedisError.server(command: command, message: message) }
        return try (reply.array ?? []).compactMap { pair in
            guard let parts = pair.array, parts.count == 2, let stream = parts[0].string else { return nil }
            return StreamBatch(stream: stream, entries: try StreamEntry.list(parts[1]))
        }
    }
}

/// The summary form of `XPENDING key group`.
public struct PendingSummary: Sendable, Hashable {
    /// Entries delivered to the group and not yet acknowledged.
    public var count: Int
    /// The oldest pending id, if any.
    public var smallestID: String?
    /// The newest pending id, if any.
    public var largestID: String?
    /// Pending counts per consumer.
    public var consumers: [String: Int]
}

/// One row of the extended form of `XPENDING`.
public struct PendingEntry: Sendable, Hashable {
    /// The entry id.
    public var id: String
    /// The consumer that owns the entry.
    public var consumer: String
    /// Milliseconds since the entry was last delivered.
    public var idleMilliseconds: Int
    /// How many times the entry has been delivered.
    public var deliveries: Int
}

/// The reply of `XAUTOCLAIM`.
public struct AutoClaimResult: Sendable, Hashable {
    /// The cursor to pass as `start` next time; `0-0` when the scan is complete.
    public var nextStart: String
    /// The claimed entries that still exist.
    public var entries: [StreamEntry]
    /// Ids that were pending but no longer exist in the stream (deleted or trimmed);
    /// Redis has already removed them from the pending list.
    public var deletedIDs: [String]
}

/// One row of `XINFO GROUPS`.
public struct GroupInfo: Sendable, Hashable {
    /// The group name.
    public var name: String
    /// Consumers known to the group.
    public var consumers: Int
    /// Entries delivered and not acknowledged.
    public var pending: Int
    /// The last id delivered to the group.
    public var lastDeliveredID: String
    /// Entries read by the group (Redis 7+).
    public var entriesRead: Int?
    /// Entries in the stream not yet delivered to the group; `nil` when Redis cannot tell
    /// (for example after entries were deleted).
    public var lag: Int?
}

/// One row of `XINFO CONSUMERS`.
public struct ConsumerInfo: Sendable, Hashable {
    /// The consumer name.
    public var name: String
    /// Entries it owns and has not acknowledged.
    public var pending: Int
    /// Milliseconds since its last attempted interaction.
    public var idleMilliseconds: Int
    /// Milliseconds since its last successful read (Redis 7.2+), when known.
    public var inactiveMilliseconds: Int?
}

/// The reply of `XINFO STREAM`.
public struct StreamInfo: Sendable, Hashable {
    /// Number of entries.
    public var length: Int
    /// Number of consumer groups.
    public var groups: Int
    /// The id of the newest entry ever added.
    public var lastGeneratedID: String
    /// The oldest entry, if any.
    public var firstEntry: StreamEntry?
    /// The newest entry, if any.
    public var lastEntry: StreamEntry?
}
