// Typed helpers for the Redis Streams commands the runtime uses.

extension RedisConnection {
    /// The argument list of an `XADD`, for use in a ``pipeline(_:)``.
    ///
    /// - Parameter maxLength: trims with `MAXLEN ~ n` (approximate, cheap) when given.
    public static func xaddArguments(
        _ stream: String, id: String = "*", fields: [StreamField], maxLength: Int? = nil
    ) -> [String] {
        var arguments = ["XADD", stream]
        arguments.reserveCapacity(6 + fields.count * 2)
        if let maxLength { arguments += ["MAXLEN", "~", String(maxLength)] }
        arguments.append(id)
        for field in fields {
            arguments.append(field.name)
            arguments.append(field.value)
        }
        return arguments
    }

    /// `XADD stream [MAXLEN ~ n] id field value ...`; returns the new entry id.
    @discardableResult
    public func xadd(_ stream: String, id: String = "*", fields: [StreamField], maxLength: Int? = nil) throws -> String
    {
        let reply = try command(Self.xaddArguments(stream, id: id, fields: fields, maxLength: maxLength))
        guard let newID = reply.string else {
            throw RedisError.unexpectedReply(command: "XADD", reply: reply.description)
        }
        return newID
    }

    /// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...`.
    ///
    /// Returns an empty list when `BLOCK` timed out. Use id `>` for new entries, or `0` to
    /// re-read this consumer's own pending entries (deleted ones come back with
    /// ``StreamEntry/isDeleted``).
    public func xreadgroup(
        group: String, consumer: String, streams: [(key: String, id: String)], count: Int? = nil,
        blockMilliseconds: Int? = nil, noAck: Bool = false
    ) throws -> [StreamBatch] {
        let arguments = Self.xreadgroupArguments(
            group: group, consumer: consumer, streams: streams, count: count, blockMilliseconds: blockMilliseconds,
            noAck: noAck)
        return try streamCommand(arguments, blockingFor: Double(blockMilliseconds ?? 0) / 1000)
    }

    /// The arguments of an `XREADGROUP` (for ``pipeline(_:thenRead:)``).
    public static func xreadgroupArguments(
        group: String, consumer: String, streams: [(key: String, id: String)], count: Int? = nil,
        blockMilliseconds: Int? = nil, noAck: Bool = false
    ) -> [String] {
        var arguments = ["XREADGROUP", "GROUP", group, consumer]
        if let count { arguments += ["COUNT", String(count)] }
        if let blockMilliseconds { arguments += ["BLOCK", String(blockMilliseconds)] }
        if noAck { arguments.append("NOACK") }
        arguments.append("STREAMS")
        arguments += streams.map(\.key)
        arguments += streams.map(\.id)
        return arguments
    }

    /// `XACK stream group id...`; returns how many entries were acknowledged.
    @discardableResult
    public func xack(_ stream: String, group: String, ids: [String]) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try integer(command(["XACK", stream, group] + ids), "XACK")
    }

    /// `XPENDING stream group`: the summary form.
    public func xpendingSummary(_ stream: String, group: String) throws -> PendingSummary {
        let reply = try command(["XPENDING", stream, group])
        guard let parts = reply.array, parts.count == 4 else {
            throw RedisError.unexpectedReply(command: "XPENDING", reply: reply.description)
        }
        var consumers: [String: Int] = [:]
        for pair in parts[3].array ?? [] {
            if let elements = pair.array, elements.count == 2, let name = elements[0].string {
                consumers[name] = elements[1].int ?? 0
            }
        }
        return PendingSummary(
            count: parts[0].int ?? 0, smallestID: parts[1].string, largestID: parts[2].string, consumers: consumers)
    }

    /// `XPENDING stream group [IDLE ms] start end count [consumer]`: the extended form.
    public func xpending(
        _ stream: String, group: String, minIdleMilliseconds: Int? = nil, start: String = "-", end: String = "+",
        count: Int, consumer: String? = nil
    ) throws -> [PendingEntry] {
        var arguments = ["XPENDING", stream, group]
        if let minIdleMilliseconds { arguments += ["IDLE", String(minIdleMilliseconds)] }
        arguments += [start, end, String(count)]
        if let consumer { arguments.append(consumer) }
        let reply = try command(arguments)
        return try (reply.array ?? []).map { row in
            guard let fields = row.array, fields.count == 4, let id = fields[0].string, let owner = fields[1].string
            else { throw RedisError.unexpectedReply(command: "XPENDING", reply: row.description) }
            return PendingEntry(
                id: id, consumer: owner, idleMilliseconds: fields[2].int ?? 0, deliveries: fields[3].int ?? 0)
        }
    }

    /// `XCLAIM stream group consumer min-idle id...`: moves ownership of idle entries and
    /// increments their delivery counters. Entries deleted meanwhile are dropped from the
    /// pending list by Redis and not returned.
    public func xclaim(
        _ stream: String, group: String, consumer: String, minIdleMilliseconds: Int, ids: [String]
    ) throws -> [StreamEntry] {
        guard !ids.isEmpty else { return [] }
        let reply = try command(["XCLAIM", stream, group, consumer, String(minIdleMilliseconds)] + ids)
        return try StreamEntry.list(reply)
    }

    /// `XAUTOCLAIM stream group consumer min-idle start COUNT n`.
    public func xautoclaim(
        _ stream: String, group: String, consumer: String, minIdleMilliseconds: Int, start: String = "0-0",
        count: Int = 100
    ) throws -> AutoClaimResult {
        let reply = try command([
            "XAUTOCLAIM", stream, group, consumer, String(minIdleMilliseconds), start, "COUNT", String(count),
        ])
        guard let parts = reply.array, parts.count >= 2, let next = parts[0].string else {
            throw RedisError.unexpectedReply(command: "XAUTOCLAIM", reply: reply.description)
        }
        let deleted = parts.count > 2 ? (parts[2].array ?? []).compactMap(\.string) : []
        return AutoClaimResult(nextStart: next, entries: try StreamEntry.list(parts[1]), deletedIDs: deleted)
    }

    /// `XGROUP CREATE stream group id [MKSTREAM]`. Returns `false` when the group already
    /// existed (`BUSYGROUP` is not an error).
    @discardableResult
    public func xgroupCreate(_ stream: String, group: String, startID: String = "$", makeStream: Bool = true) throws
        -> Bool
    {
        do {
            try command(["XGROUP", "CREATE", stream, group, startID] + (makeStream ? ["MKSTREAM"] : []))
            return true
        } catch let error as RedisError where error.serverCode == "BUSYGROUP" {
            return false
        }
    }

    /// `XGROUP DELCONSUMER stream group consumer`; returns the pending entries it dropped.
    /// Redis drops the consumer's pending entries with it: check ``xpending`` first.
    @discardableResult
    public func xgroupDeleteConsumer(_ stream: String, group: String, consumer: String) throws -> Int {
        try integer(command(["XGROUP", "DELCONSUMER", stream, group, consumer]), "XGROUP DELCONSUMER")
    }

    /// `XINFO GROUPS stream`.
    ///
    /// A group that was delivered the stream's last entry has a lag of 0, whatever Redis's
    /// `entries-read` counter says: after a failover the promoted replica's counter can be
    /// behind (reads are not all replicated), and Redis would report a lag that never drains.
    public func xinfoGroups(_ stream: String) throws -> [GroupInfo] {
        var groups = try (command(["XINFO", "GROUPS", stream]).array ?? []).map { row in
            let map = row.fieldMap
            return GroupInfo(
                name: map["name"]?.string ?? "", consumers: map["consumers"]?.int ?? 0,
                pending: map["pending"]?.int ?? 0, lastDeliveredID: map["last-delivered-id"]?.string ?? "",
                entriesRead: map["entries-read"]?.int, lag: map["lag"]?.int)
        }
        if groups.contains(where: { ($0.lag ?? 0) > 0 }) {
            let last = try xinfoStream(stream).lastGeneratedID
            for index in groups.indices where groups[index].lastDeliveredID == last { groups[index].lag = 0 }
        }
        return groups
    }

    /// `XINFO CONSUMERS stream group`.
    public func xinfoConsumers(_ stream: String, group: String) throws -> [ConsumerInfo] {
        try (command(["XINFO", "CONSUMERS", stream, group]).array ?? []).map { row in
            let map = row.fieldMap
            return ConsumerInfo(
                name: map["name"]?.string ?? "", pending: map["pending"]?.int ?? 0,
                idleMilliseconds: map["idle"]?.int ?? 0, inactiveMilliseconds: map["inactive"]?.int)
        }
    }

    /// `XINFO STREAM stream`.
    public func xinfoStream(_ stream: String) throws -> StreamInfo {
        let map = try command(["XINFO", "STREAM", stream]).fieldMap
        func entry(_ key: String) throws -> StreamEntry? {
            guard let reply = map[key], !reply.isNull else { return nil }
            return try StreamEntry(reply: reply)
        }
        return StreamInfo(
            length: map["length"]?.int ?? 0, groups: map["groups"]?.int ?? 0,
            lastGeneratedID: map["last-generated-id"]?.string ?? "", firstEntry: try entry("first-entry"),
            lastEntry: try entry("last-entry"))
    }

    /// `XRANGE stream start end [COUNT n]`, oldest first.
    public func xrange(_ stream: String, start: String = "-", end: String = "+", count: Int? = nil) throws
        -> [StreamEntry]
    {
        try StreamEntry.list(command(["XRANGE", stream, start, end] + (count.map { ["COUNT", String($0)] } ?? [])))
    }

    /// `XREVRANGE stream end start [COUNT n]`, newest first.
    public func xrevrange(_ stream: String, end: String = "+", start: String = "-", count: Int? = nil) throws
        -> [StreamEntry]
    {
        try StreamEntry.list(command(["XREVRANGE", stream, end, start] + (count.map { ["COUNT", String($0)] } ?? [])))
    }

    /// `XDEL stream id...`; returns how many entries were deleted.
    @discardableResult
    public func xdel(_ stream: String, ids: [String]) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try integer(command(["XDEL", stream] + ids), "XDEL")
    }

    /// `XLEN stream`.
    public func xlen(_ stream: String) throws -> Int {
        try integer(command(["XLEN", stream]), "XLEN")
    }

    private func integer(_ reply: RedisReply, _ command: String) throws -> Int {
        guard let value = reply.int else {
            throw RedisError.unexpectedReply(command: command, reply: reply.description)
        }
        return value
    }
}
