// DeadLetterSet: a service's dead letters as an API (list with filters, group, show, replay,
// purge), shared by the CLI and the console. Replay re-adds the original message to the
// service's own commands stream (only the service that failed sees it again) and deletes the
// dead letter only after the re-add succeeded: a crash in between leaves a duplicate that the
// inbox absorbs, never a loss.

import Choreo
import Foundation
import Redis

/// Which dead letters an operation applies to. Every condition set must hold.
public struct DeadLetterFilter: Sendable, Equatable {
    /// The original stream.
    public var stream: String?
    /// The message type.
    public var type: String?
    /// Text the error contains (case-insensitive).
    public var errorContains: String?
    /// Dead at or after (ms since epoch).
    public var since: Int64?
    /// Dead at or before (ms since epoch).
    public var until: Int64?

    /// A filter; no conditions matches everything.
    public init(
        stream: String? = nil, type: String? = nil, errorContains: String? = nil, since: Int64? = nil,
        until: Int64? = nil
    ) {
        self.stream = stream
        self.type = type
        self.errorContains = errorContains
        self.since = since
        self.until = until
    }

    /// Whether no condition is set.
    public var isEmpty: Bool { self == DeadLetterFilter() }

    /// Whether `letter` passes.
    public func matches(_ letter: DeadLetter) -> Bool {
        if let stream, letter.stream != stream { return false }
        if let type, letter.type != type { return false }
        if let errorContains, !letter.errorText.localizedCaseInsensitiveContains(errorContains) { return false }
        if let since, letter.deadAtMilliseconds < since { return false }
        if let until, letter.deadAtMilliseconds > until { return false }
        return true
    }
}

/// Dead letters of one kind: the same type and the same error (ids and numbers blurred), like
/// ServicePulse's retry groups.
public struct DeadLetterGroup: Sendable, Equatable, Codable {
    /// The message type.
    public var type: String
    /// The error, with ids and numbers replaced by `#`.
    public var error: String
    /// How many letters.
    public var count: Int
    /// The newest letter's entry id and dead-at time.
    public var newestID: String
    public var newestAt: Int64
    /// The oldest letter's dead-at time.
    public var oldestAt: Int64
}

/// The dead-letter stream of one service.
public final class DeadLetterSet {
    /// The service.
    public let service: ServiceDefinition
    let redis: RedisConnection

    /// The dead letters of `service`, over `redis`.
    public init(service: ServiceDefinition, redis: RedisConnection) {
        self.service = service
        self.redis = redis
    }

    /// How many dead letters there are.
    public func count() throws -> Int { try redis.xlen(service.deadStream) }

    /// Dead letters matching `filter`, newest first, at most `limit`, starting before entry
    /// `before` (exclusive; for paging).
    public func list(_ filter: DeadLetterFilter = DeadLetterFilter(), limit: Int? = nil, before: String? = nil) throws
        -> [DeadLetter]
    {
        var found: [DeadLetter] = []
        var end = before.map { "(" + $0 } ?? "+"
        let start = filter.since.map { String(max($0 - 60_000, 0)) } ?? "-"
        while limit.map({ found.count < $0 }) ?? true {
            let page = try redis.xrevrange(service.deadStream, end: end, start: start, count: 500)
            for entry in page {
                let letter = DeadLetter(entry: entry)
                if filter.matches(letter) { found.append(letter) }
                if let limit, found.count >= limit { break }
            }
            guard page.count == 500, let last = page.last else { break }
            end = "(" + last.id
        }
        return found
    }

    /// One dead letter by its entry id in the dead stream.
    public func get(_ id: String) throws -> DeadLetter? {
        try redis.xrange(service.deadStream, start: id, end: id, count: 1).first.map(DeadLetter.init(entry:))
    }

    /// Letters grouped by type and blurred error, largest group first.
    public static func groups(_ letters: [DeadLetter]) -> [DeadLetterGroup] {
        var groups: [String: DeadLetterGroup] = [:]
        var order: [String] = []
        for letter in letters {
            let error = blur(letter.errorText)
            let key = letter.type + "\u{0}" + error
            if var group = groups[key] {
                group.count += 1
                if letter.deadAtMilliseconds > group.newestAt {
                    group.newestAt = letter.deadAtMilliseconds
                    group.newestID = letter.entry.id
                }
                group.oldestAt = min(group.oldestAt, letter.deadAtMilliseconds)
                groups[key] = group
            } else {
                order.append(key)
                groups[key] = DeadLetterGroup(
                    type: letter.type, error: error, count: 1, newestID: letter.entry.id,
                    newestAt: letter.deadAtMilliseconds, oldestAt: letter.deadAtMilliseconds)
            }
        }
        return order.compactMap { groups[$0] }.sorted { $0.count > $1.count }
    }

    /// The error with UUIDs, hex ids and numbers replaced by `#`, so that letters that died of
    /// the same cause group together.
    public static func blur(_ error: String) -> String {
        var text = error
        for pattern in ["[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "[0-9]+"] {
            text = text.replacingOccurrences(of: pattern, with: "#", options: .regularExpression)
        }
        return text
    }

    /// The message a replay of `letter` adds: its original fields (same envelope id,
    /// correlation, causation and traceparent), with the replay count raised by one.
    public static func replayFields(_ letter: DeadLetter) -> [StreamField] {
        let replays = (Int(letter.entry["replays"] ?? "") ?? 0) + 1
        return letter.originalFields.filter { $0.name != "replays" } + [StreamField("replays", String(replays))]
    }

    /// Where a replay of a letter with `fields` goes: the service's commands stream, or its key's
    /// partition of it.
    static func target(_ service: ServiceDefinition, _ fields: [StreamField]) -> String {
        service.commandPartitioning?.key(for: fields) ?? service.commandStream
    }

    /// Replays one letter into the service's commands stream, then deletes it. Returns the
    /// new entry id.
    @discardableResult
    public func replay(_ letter: DeadLetter) throws -> String {
        let fields = Self.replayFields(letter)
        let id = try redis.xadd(Self.target(service, fields), fields: fields)
        _ = try redis.xdel(service.deadStream, ids: [letter.entry.id])
        return id
    }

    /// Replays letters in chunks: one pipeline re-adds a chunk, the next deletes it (never a
    /// delete before its re-add succeeded). Calls `progress` with the count done after each chunk.
    public func replay(_ letters: [DeadLetter], chunk: Int = 200, progress: (Int) -> Void = { _ in }) throws {
        var done = 0
        for start in stride(from: 0, to: letters.count, by: chunk) {
            let part = letters[start..<min(start + chunk, letters.count)]
            try redis.pipelineCheckingErrors(
                part.map { letter in
                    let fields = Self.replayFields(letter)
                    return ["XADD", Self.target(service, fields), "*"] + fields.flatMap { [$0.name, $0.value] }
                })
            _ = try redis.xdel(service.deadStream, ids: part.map(\.entry.id))
            done += part.count
            progress(done)
        }
    }

    /// Deletes letters; returns how many were deleted.
    @discardableResult
    public func purge(_ ids: [String]) throws -> Int {
        var deleted = 0
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            deleted += try redis.xdel(service.deadStream, ids: Array(ids[chunk..<min(chunk + 500, ids.count)]))
        }
        return deleted
    }
}
