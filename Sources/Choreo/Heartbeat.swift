// Heartbeat: the record of a live worker process in choreo:workers:{service}, and how to tell
// live processes from gone ones.

import Foundation
import Redis

/// One worker process's heartbeat, stored as a JSON value under its consumer name in the hash
/// `choreo:workers:{service}`.
public struct Heartbeat: Codable, Sendable, Equatable {
    /// The consumer name (`host-pid-random`).
    public var consumer: String
    /// Host name.
    public var host: String
    /// Process id.
    public var pid: Int32
    /// Start time, ms since epoch.
    public var startedAt: Int64
    /// Last beat, ms since epoch.
    public var at: Int64
    /// Streams it consumes.
    public var streams: [String]
    /// The service's delayed messages still scheduled, as this process last counted them
    /// (every few seconds; `nil` for a service without a schema or before the first count).
    public var scheduled: Int? = nil
    /// When the next scheduled message is due, ms since epoch.
    public var nextDue: Int64? = nil
    /// When ``scheduled`` was counted, ms since epoch.
    public var scheduledAt: Int64? = nil

    /// A heartbeat older than this many seconds is considered gone.
    public static let staleAfter: Double = 10

    /// Whether the process beat within ``staleAfter`` seconds of `now`.
    public func isLive(now: Int64 = Envelope.nowMilliseconds()) -> Bool {
        Double(now - at) / 1000 < Self.staleAfter
    }

    /// Reads every heartbeat of `service`.
    public static func all(service: String, redis: RedisConnection) throws -> [Heartbeat] {
        let map = try redis.command(["HGETALL", Topology.workersKey(service)]).fieldMap
        return map.values.compactMap { reply in
            reply.string.flatMap { try? JSONDecoder().decode(Heartbeat.self, from: Data($0.utf8)) }
        }
    }
}
