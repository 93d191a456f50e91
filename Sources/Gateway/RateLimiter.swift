// RateLimiter: a per-key GCRA rate limit kept in Redis, so every gateway process shares one limit.

import Choreo
import Redis

/// Requests per second with a burst allowance, per API key, enforced with the generic cell
/// rate algorithm in a Redis script (one key per API key: `choreo:ratelimit:{name}`).
public struct RateLimit: Sendable, Equatable {
    /// Sustained requests per second.
    public var perSecond: Double
    /// Extra requests allowed at once.
    public var burst: Int

    /// Creates a limit.
    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Parses `100/s` or `100/s,burst=50`.
    public init?(spec: String) {
        let parts = spec.split(separator: ",")
        guard let rate = parts.first, rate.hasSuffix("/s"), let value = Double(rate.dropLast(2)), value > 0 else {
            return nil
        }
        var burst = Int(value)
        for part in parts.dropFirst() where part.hasPrefix("burst=") {
            guard let parsed = Int(part.dropFirst(6)), parsed >= 0 else { return nil }
            burst = parsed
        }
        self.init(perSecond: value, burst: burst)
    }

    static let script = RedisScript(
        """
        local emission = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2]) * emission
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        if now < tat - tolerance then return {0, math.ceil(tat - tolerance - now)} end
        local next = tat + emission
        redis.call('SET', KEYS[1], tostring(next), 'PX', math.ceil(next - now + tolerance) + 1000)
        return {1, 0}
        """)

    /// Takes one request for `key`; returns nil when allowed, or the seconds to wait.
    func take(_ key: String, on redis: RedisClient) async throws -> Int? {
        Self.wait(
            from: try await redis.run(Self.script, keys: [Self.key(key)], arguments: arguments))
    }

    /// ``take(_:on:)`` for the channel-level submit: `completion` runs once, on the Redis
    /// client's thread. Returns false, without calling it, when this process has not loaded
    /// the script yet (the router's path loads it).
    func take(
        _ key: String, on redis: RedisClient, completion: @escaping @Sendable (Result<Int?, Error>) -> Void
    ) -> Bool {
        guard let digest = Self.script.digest else { return false }
        redis.command(["EVALSHA", digest, "1", Self.key(key)] + arguments) { reply in
            completion(reply.map(Self.wait(from:)))
        }
        return true
    }

    /// Whether this process has loaded the script (see ``take(_:on:completion:)``).
    static var isLoaded: Bool { script.digest != nil }

    private static func key(_ name: String) -> String { "choreo:ratelimit:\(name)" }

    private var arguments: [String] { [String(1000 / perSecond), String(burst)] }

    /// nil when the script allowed the request, else the whole seconds to wait.
    private static func wait(from reply: RedisReply) -> Int? {
        guard let parts = reply.array, parts.count == 2, parts[0].int == 0 else { return nil }
        return max(1, Int((Double(parts[1].int ?? 1000) / 1000).rounded(.up)))
    }

    /// The 429 for `key` when it must wait `seconds`.
    func problem(key: String, wait seconds: Int) -> Problem {
        Problem(
            .tooManyRequests, "Too many requests",
            detail: "API key '\(key)' is over \(perSecond)/s (burst \(burst))", retryAfter: seconds)
    }
}
