// GatewayConfiguration: the gateway's settings, documented and validated.

/// Settings of one gateway process.
public struct GatewayConfiguration: Sendable, Equatable {
    /// Address to listen on.
    public var host: String = "127.0.0.1"
    /// Port to listen on (0 picks a free one).
    public var port: Int = 8080
    /// Largest accepted request body, in bytes (larger is 413).
    public var maxBodyBytes: Int = 64 * 1024
    /// Upper bound of a long-wait (`Prefer: wait=N`, `?wait=N`), in seconds.
    public var maxWait: Double = 60
    /// How long a query waits for the owning service's reply before 504, in seconds.
    public var queryTimeout: Double = 5
    /// Redis connections for request handling (the results tail has its own). Concurrent
    /// requests share each connection's round trips (automatic pipelining and merged
    /// transactions), so one is usually best: fewer connections make bigger batches (on
    /// 2 cores, 1 connection submitted 2 to 7 points of the bare route's rate more than 2).
    public var redisPoolSize: Int = 1
    /// Whether to refuse commands for services without a live worker (503), instead of queueing.
    public var requireLiveWorker: Bool = true
    /// Whether to refuse commands (503 with `Retry-After`) for a service one of whose streams
    /// (its commands, the events it consumes, its own events) holds more unacknowledged
    /// entries than the stream's `maxlen`: a consumer lags, and streams are never trimmed
    /// below what a group still needs, so queueing more would only grow Redis.
    public var backpressure: Bool = true
    /// Whether valid submissions are answered at the channel level, on the connection's event
    /// loop, instead of through the router (see `SubmitFastPath`). The responses are the same;
    /// it only applies without a tracer (spans need the router's middleware) and is what gets
    /// submit near the rate of a bare route. Off sends every request through the router.
    public var fastSubmit: Bool = true
    /// Whether long-waits on `GET /v1/commands/{id}` are parked on the connection (see
    /// `LongWaitFastPath`: a callback and a timer, no task) instead of in the router, where a
    /// parked request holds its whole async call chain. The responses are the same; without a
    /// tracer only. Off parks every long-wait in the router.
    public var fastLongWait: Bool = true

    /// Seconds a keep-alive connection may carry nothing before the gateway closes it (a
    /// connection with a request in hand, such as a parked long-wait, is never idle). Keeps
    /// idle or abandoned clients from exhausting file descriptors.
    public var idleTimeout: Double = 65
    /// Pending connections the kernel queues before the gateway accepts them (a burst of new
    /// clients beyond it waits for SYN retries, a second or more; capped by `somaxconn`).
    public var backlog: Int = 4096

    /// API keys; empty turns authentication off (development only).
    public var keys = APIKeyring()
    /// Per-key rate limit shared by every gateway process; nil for none.
    public var rateLimit: RateLimit?

    /// The defaults.
    public init() {}

    /// Problems, as messages; empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        if !(0...65535).contains(port) { problems.append("port must be between 0 and 65535 (got \(port))") }
        if maxBodyBytes < 1024 { problems.append("maxBodyBytes must be at least 1024 (got \(maxBodyBytes))") }
        if maxWait < 0 { problems.append("maxWait must not be negative (got \(maxWait))") }
        if queryTimeout <= 0 { problems.append("queryTimeout must be positive (got \(queryTimeout))") }
        if idleTimeout <= 0 { problems.append("idleTimeout must be positive (got \(idleTimeout))") }
        if redisPoolSize < 1 { problems.append("redisPoolSize must be at least 1 (got \(redisPoolSize))") }
        return problems
    }
}
