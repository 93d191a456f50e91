// RedisNode: one blocking connection to one Redis server over hiredis: connect, authenticate,
// send binary-safe commands and pipelines, reconnect with backoff after the server drops the
// connection. RedisConnection routes over one (standalone) or several (cluster) of these.

import CHiredis

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One blocking connection to one Redis server, over hiredis (used by ``RedisConnection``).
///
/// **Threading.** A `RedisNode` is not thread-safe: exactly one owner uses it at a time
/// (a worker thread, or the serial queue of a ``RedisClient``). Its calls block the calling
/// thread, so never call it from a SwiftNIO event loop or Swift's cooperative pool; from async
/// code use ``RedisClient``, which runs the same calls on a dedicated serial queue.
///
/// **Reconnects.** When the server drops the connection (restart, `CLIENT KILL`, network), the
/// command in flight fails with ``RedisError/connectionLost(endpoint:reason:)`` (its effect is
/// unknown, so it is never silently repeated) and the next call reconnects, re-authenticating
/// and re-selecting the database. A peer that closed an idle connection is noticed before the
/// next command is written, so that command goes through on a fresh connection. While the
/// server stays down, reconnect attempts are spaced by an exponential backoff and calls in
/// between fail at once with ``RedisError/connectionFailed(endpoint:reason:)``.
final class RedisNode: @unchecked Sendable {
    /// The settings this connection was opened with.
    public let configuration: RedisConfiguration

    private var context: UnsafeMutablePointer<redisContext>?
    private var timeoutInEffect: Double = 0
    private var backoff: Double
    private var nextAttempt: ContinuousClock.Instant?
    private var lastFailure = ""

    /// Opens a connection; throws ``RedisError`` naming the endpoint when it cannot. With
    /// `connectNow` false, the first command connects.
    init(configuration: RedisConfiguration, connectNow: Bool = true) throws {
        Self.ignoreBrokenPipes
        self.configuration = configuration
        self.backoff = configuration.reconnectDelay
        if connectNow { try open() }
    }

    deinit {
        if let context { redisFree(context) }
    }

    /// Writing to a socket the server closed raises SIGPIPE, which would kill the process.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Whether the connection is currently open (it may still turn out to be closed by the peer).
    public var isConnected: Bool { context != nil }

    /// Closes the connection. The next command reconnects.
    public func close() {
        if let context { redisFree(context) }
        context = nil
    }

    // MARK: Commands

    /// Sends one command and returns its reply. Error replies are thrown as
    /// ``RedisError/server(command:message:)``.
    ///
    /// - Parameter blockingFor: extra seconds the reply may take (for `BLOCK` arguments).
    @discardableResult
    public func command(_ arguments: [String], blockingFor: Double = 0) throws -> RedisReply {
        let reply = try roundTrip(RedisArguments(arguments), extraTimeout: blockingFor)
        if case .error(let message) = reply {
            throw RedisError.server(command: arguments.first?.uppercased() ?? "", message: message)
        }
        return reply
    }

    /// Sends one command whose arguments are raw bytes (binary-safe keys and values).
    @discardableResult
    public func command(bytes arguments: [[UInt8]]) throws -> RedisReply {
        let reply = try roundTrip(RedisArguments(bytes: arguments), extraTimeout: 0)
        if case .error(let message) = reply {
            let name = arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
            throw RedisError.server(command: name, message: message)
        }
        return reply
    }

    /// Sends many commands before reading any reply, then returns the replies in order.
    /// Error replies are returned in place (as ``RedisReply/error(_:)``), not thrown, so each
    /// command's outcome can be inspected. Large pipelines are sent in chunks of 512 to keep
    /// the client's buffers bounded.
    public func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        try sendPipeline(commands) { raw in replies.append(HiredisReply.value(raw)) }
        return replies
    }

    /// Sends a pipeline whose replies are not needed, only checked: throws the first error
    /// reply (as ``RedisError/server(command:message:)``) after reading every reply, so the
    /// connection stays in step. Cheaper than ``pipeline(_:)``: replies are not copied.
    public func pipelineCheckingErrors(_ commands: [[String]]) throws {
        var firstError: RedisError?
        var index = 0
        try sendPipeline(commands) { raw in
            if firstError == nil { firstError = Self.error(in: raw, command: commands[index]) }
            index += 1
        }
        if let firstError { throw firstError }
    }

    /// The error a reply carries: an error reply, or for `EXEC` the first error among the
    /// transaction's replies (a command that failed while the others ran).
    static func error(in raw: UnsafeMutablePointer<redisReply>, command: [String]) -> RedisError? {
        if raw.pointee.type == REDIS_REPLY_ERROR {
            let message = raw.pointee.str.map { String(cString: $0) } ?? ""
            return .server(command: command.first ?? "", message: message)
        }
        guard raw.pointee.type == REDIS_REPLY_ARRAY, command.first == "EXEC", let elements = raw.pointee.element
        else { return nil }
        for index in 0..<raw.pointee.elements {
            guard let element = elements[index], element.pointee.type == REDIS_REPLY_ERROR else { continue }
            let message = element.pointee.str.map { String(cString: $0) } ?? ""
            return .server(command: "EXEC", message: message)
        }
        return nil
    }

    /// Writes the commands in chunks of 512, each encoded in RESP into one buffer; writes the
    /// next chunk before reading the previous chunk's replies so that encoding overlaps with
    /// the server's work.
    private func sendPipeline(_ commands: [[String]], _ consume: (UnsafeMutablePointer<redisReply>) throws -> Void)
        throws
    {
        guard !commands.isEmpty else { return }
        let context = try usableContext(extraTimeout: 0)
        let chunk = 512
        var buffer: [UInt8] = []
        var sentUpTo = 0
        var readUpTo = 0
        func send(_ range: Range<Int>) throws {
            buffer.removeAll(keepingCapacity: true)
            for index in range { RESPEncoder.append(commands[index], to: &buffer) }
            try write(buffer, to: context)
        }
        func read(_ count: Int) throws {
            for _ in 0..<count {
                var raw: UnsafeMutableRawPointer?
                guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw lost(context) }
                defer { freeReplyObject(raw) }
                try consume(raw.assumingMemoryBound(to: redisReply.self))
            }
        }
        while sentUpTo < commands.count {
            let end = min(sentUpTo + chunk, commands.count)
            try send(sentUpTo..<end)
            let previous = sentUpTo - readUpTo
            if previous > 0 {
                try read(previous)
                readUpTo = sentUpTo
            }
            sentUpTo = end
        }
        try read(sentUpTo - readUpTo)
    }

    /// Writes `commands` without reading their replies: the first half of a pipeline spread
    /// over several nodes (every node is written before any is read). Read the replies with
    /// ``readReplies(_:)`` before anything else is sent.
    func writePipeline(_ commands: [[String]]) throws {
        guard !commands.isEmpty else { return }
        let context = try usableContext(extraTimeout: 0)
        var buffer: [UInt8] = []
        for command in commands { RESPEncoder.append(command, to: &buffer) }
        try write(buffer, to: context)
    }

    /// Hands RESP-encoded commands to hiredis and writes them out completely.
    private func write(_ buffer: [UInt8], to context: UnsafeMutablePointer<redisContext>) throws {
        let status = buffer.withUnsafeBufferPointer { bytes in
            bytes.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                redisAppendFormattedCommand(context, $0, bytes.count)
            }
        }
        guard status == REDIS_OK else { throw lost(context) }
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else { throw lost(context) }
        }
    }

    /// Reads `count` replies of commands sent by ``writePipeline(_:)``, error replies in place.
    func readReplies(_ count: Int) throws -> [RedisReply] {
        guard count > 0 else { return [] }
        guard let context else {
            throw RedisError.connectionLost(endpoint: configuration.endpoint, reason: "the connection was closed")
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        for _ in 0..<count { replies.append(try readReply(context)) }
        return replies
    }

    // MARK: Internals

    private func roundTrip(_ arguments: RedisArguments, extraTimeout: Double) throws -> RedisReply {
        let context = try usableContext(extraTimeout: extraTimeout)
        let raw = arguments.withArgv { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        guard let raw else { throw lost(context) }
        let reply = HiredisReply.value(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return reply
    }

    private func readReply(_ context: UnsafeMutablePointer<redisContext>) throws -> RedisReply {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw lost(context) }
        let reply = HiredisReply.value(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return reply
    }

    /// The open context, reconnecting first if the connection is closed or broken, with the
    /// socket timeout set for a command that may block `extraTimeout` seconds.
    private func usableContext(extraTimeout: Double) throws -> UnsafeMutablePointer<redisContext> {
        if let context, context.pointee.err != 0 || peerHasClosed(context) { close() }
        if context == nil { try reconnect() }
        guard let context else {
            throw RedisError.connectionFailed(endpoint: configuration.endpoint, reason: lastFailure)
        }
        let wanted = configuration.commandTimeout + extraTimeout
        if wanted != timeoutInEffect {
            _ = redisSetTimeout(context, Self.makeTimeval(seconds: wanted))
            timeoutInEffect = wanted
        }
        return context
    }

    private func reconnect() throws {
        let now = ContinuousClock.now
        if let nextAttempt, now < nextAttempt {
            let wait =
                Double((nextAttempt - now).components.attoseconds) / 1e18
                + Double((nextAttempt - now).components.seconds)
            throw RedisError.connectionFailed(
                endpoint: configuration.endpoint,
                reason: "\(lastFailure) (next attempt in \(Int(wait * 1000)) ms)")
        }
        do {
            try open()
            backoff = configuration.reconnectDelay
            nextAttempt = nil
        } catch let error as RedisError {
            if case .connectionFailed(_, let reason) = error { lastFailure = reason } else { lastFailure = "\(error)" }
            let jitter = Double.random(in: 0.8...1.2)
            nextAttempt = now.advanced(by: .milliseconds(Int(backoff * jitter * 1000)))
            backoff = min(backoff * 2, configuration.maxReconnectDelay)
            throw error
        }
    }

    private func open() throws {
        let endpoint = configuration.endpoint
        guard
            let newContext = redisConnectWithTimeout(
                configuration.host, Int32(configuration.port), Self.makeTimeval(seconds: configuration.connectTimeout))
        else { throw RedisError.connectionFailed(endpoint: endpoint, reason: "out of memory") }
        if newContext.pointee.err != 0 {
            let reason = Self.errorText(newContext)
            redisFree(newContext)
            throw RedisError.connectionFailed(endpoint: endpoint, reason: reason)
        }
        _ = redisEnableKeepAlive(newContext)
        _ = redisSetTimeout(newContext, Self.makeTimeval(seconds: configuration.commandTimeout))
        timeoutInEffect = configuration.commandTimeout
        context = newContext
        do {
            if let password = configuration.password {
                let auth = configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
                let reply = try roundTrip(RedisArguments(auth), extraTimeout: 0)
                if let message = reply.errorMessage {
                    throw RedisError.authenticationFailed(endpoint: endpoint, reason: message)
                }
            }
            if configuration.database != 0 {
                let reply = try roundTrip(RedisArguments(["SELECT", String(configuration.database)]), extraTimeout: 0)
                if let message = reply.errorMessage {
                    throw RedisError.connectionFailed(
                        endpoint: endpoint, reason: "SELECT \(configuration.database): \(message)")
                }
            }
        } catch let error as RedisError {
            close()
            if case .connectionLost(_, let reason) = error {
                throw RedisError.connectionFailed(endpoint: endpoint, reason: reason)
            }
            throw error
        }
    }

    /// Marks the connection broken after an I/O error and builds the error to throw.
    private func lost(_ failed: UnsafeMutablePointer<redisContext>) -> RedisError {
        var reason = Self.errorText(failed)
        if reason.contains("Resource temporarily unavailable") {
            reason = "no reply within \(timeoutInEffect) s (timed out)"
        }
        close()
        return .connectionLost(endpoint: configuration.endpoint, reason: reason)
    }

    /// Detects a peer that closed the socket while we were idle, without blocking.
    private func peerHasClosed(_ context: UnsafeMutablePointer<redisContext>) -> Bool {
        var byte: UInt8 = 0
        let received = recv(context.pointee.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if received == 0 { return true }
        if received < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        return false
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        var errstr = context.pointee.errstr
        let text = withUnsafeBytes(of: &errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "I/O error" : text
    }

    private static func makeTimeval(seconds: Double) -> timeval {
        let whole = Int(seconds)
        // tv_usec is an Int on Glibc and an Int32 on Darwin.
        return timeval(tv_sec: whole, tv_usec: numericCast(Int((seconds - Double(whole)) * 1_000_000)))
    }

    /// Sends one command whose reply is read straight into stream batches (XREADGROUP/XREAD),
    /// without an intermediate ``RedisReply`` tree.
    func streamCommand(_ arguments: [String], blockingFor: Double) throws -> [StreamBatch] {
        let context = try usableContext(extraTimeout: blockingFor)
        let raw = RedisArguments(arguments).withArgv { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        guard let raw else { throw lost(context) }
        defer { freeReplyObject(raw) }
        return try HiredisReply.streamBatches(
            raw.assumingMemoryBound(to: redisReply.self), command: arguments.first ?? "")
    }

    /// Sends `commands` and then the stream read `read` (an XREADGROUP without BLOCK) in one
    /// round trip: the replies of `commands` are only checked (the first error is thrown after
    /// every reply was read), the read's reply is parsed into stream batches.
    public func pipeline(_ commands: [[String]], thenRead read: [String]) throws -> [StreamBatch] {
        var batches: [StreamBatch] = []
        var firstError: RedisError?
        var index = 0
        try sendPipeline(commands + [read]) { raw in
            defer { index += 1 }
            if index == commands.count {
                do { batches = try HiredisReply.streamBatches(raw, command: read.first ?? "") } catch let error
                    as RedisError
                {
                    firstError = firstError ?? error
                }
            } else if firstError == nil {
                firstError = Self.error(in: raw, command: commands[index])
            }
        }
        if let firstError { throw firstError }
        return batches
    }
}
