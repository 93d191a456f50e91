// SubmitFastPath: the gateway's channel-level submit. A SwiftNIO handler in front of
// Hummingbird that answers the common, valid submission (a POST to a route without path
// parameters, a JSON body that passes validation, no Idempotency-Key) on the connection's event
// loop: it charges the API key's rate limit when there is one, hands the command's transaction
// to the Redis client and writes the 202 when the client calls back, with no Swift-concurrency
// task in between. Everything else (errors,
// idempotent submits, other routes, anything unusual) is handed on unchanged to the router,
// which answers it; so every error response still comes from one place.
//
// HTTP/1 ordering: a request is only taken while the router has nothing in hand on the
// connection, and while one is being submitted, later parts (pipelined requests) are held and
// reading pauses; they are replayed, in order, once the 202 is written.

import Choreo
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers valid submissions on the event loop; hands every other request to the router.
final class SubmitFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Where the connection is, as seen by this handler.
    enum State {
        /// Between requests.
        case idle
        /// Reading the body of a request it may take.
        case collecting(HTTPRequest, SubmitRoutes.Candidate, ByteBuffer)
        /// Passing a request's parts on to the router, up to its end.
        case passing
        /// Waiting for Redis to commit a taken request; later parts are held.
        case submitting
    }

    private let gateway: Gateway
    private let routes: SubmitRoutes
    private var state = State.idle
    /// Requests handed to the router and not yet answered (their response `end` not written).
    private var unanswered = 0
    /// Parts, events (e.g. the client's half-close, or quiescing: the router's connection
    /// handler would end the connection on them before the 202 is written) and a read that came
    /// while a taken request was being submitted.
    private var held = HeldInput()
    private var quiescing = false

    init(gateway: Gateway, routes: SubmitRoutes) {
        self.gateway = gateway
        self.routes = routes
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        var busy = false
        if case .submitting = state { busy = true }
        if !held.hold(part, busy: busy) { handle(part, context: context) }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if !quiescing, unanswered == 0, let candidate = routes.candidate(head, gateway: gateway) {
                state = .collecting(head, candidate, context.channel.allocator.buffer(capacity: 0))
            } else {
                unanswered += 1
                state = .passing
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.passing, .body):
            context.fireChannelRead(wrapInboundOut(part))
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.collecting(let head, let candidate, var body), .body(var chunk)):
            if body.readableBytes + chunk.readableBytes > gateway.configuration.maxBodyBytes {
                // Over the limit: the router answers 413.
                body.writeBuffer(&chunk)
                passOn(head, body: body, end: nil, context: context)
                state = .passing
            } else {
                state = .idle  // drop the buffer's reference before appending (no copy on write)
                body.writeBuffer(&chunk)
                state = .collecting(head, candidate, body)
            }
        case (.collecting(let head, let candidate, let body), .end(let trailers)):
            if trailers == nil, let envelope = routes.envelope(head, route: candidate.route, body: body) {
                let taken = Taken(
                    head: head, body: body, route: candidate.route, principal: candidate.principal, start: .now)
                state = .submitting
                if let key = candidate.limitedKey {
                    limit(taken, envelope, key: key, context: context)
                } else {
                    submit(taken, envelope, context: context)
                }
            } else {
                passOn(head, body: body, end: trailers, context: context)
                state = .idle
            }
        default:
            // Parts out of order (a body with no head): the router reports them.
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// Hands a collected request to the router; with `end` nil, its remaining parts follow.
    private func passOn(_ head: HTTPRequest, body: ByteBuffer, end: HTTPFields??, context: ChannelHandlerContext) {
        unanswered += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
        if let end { context.fireChannelRead(wrapInboundOut(.end(end))) }
    }

    /// A request taken by the fast path.
    private struct Taken {
        var head: HTTPRequest
        var body: ByteBuffer
        var route: SubmitRoutes.Route
        var principal: String?
        var start: ContinuousClock.Instant
    }

    /// Charges the key's rate limit, then submits; answers 429 itself when over the limit (the
    /// router would charge the key again). When the limit cannot be read, nothing has been done,
    /// so the request goes to the router, which reports what it finds.
    private func limit(_ taken: Taken, _ envelope: Envelope, key: String, context: ChannelHandlerContext) {
        guard let limit = gateway.configuration.rateLimit else { return submit(taken, envelope, context: context) }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let started = limit.take(key, on: gateway.store.client()) { result in
            loop.execute {
                let (handler, context) = bound.value
                switch result {
                case .success(nil):
                    handler.submit(taken, envelope, context: context)
                case .success(let wait?):
                    handler.respond(taken, problem: limit.problem(key: key, wait: wait), context: context)
                case .failure:
                    handler.handOver(taken, context: context)
                }
            }
        }
        if !started { handOver(taken, context: context) }
    }

    private func submit(_ taken: Taken, _ envelope: Envelope, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        gateway.store.submit(envelope, service: taken.route.service, principal: taken.principal) { result in
            loop.execute {
                let (handler, context) = bound.value
                switch result {
                case .success(let outcome):
                    handler.respond(taken, accepted: outcome.id, context: context)
                case .failure(let error):
                    // As the router does: logged, and a 503 while Redis refuses writes, else a
                    // 500 that names no internals.
                    handler.gateway.logger.error("unhandled error", metadata: ["error": "\(error)"])
                    handler.respond(taken, problem: Problem.unexpected(error), context: context)
                }
            }
        }
    }

    /// Gives a taken request to the router after all (nothing was done with it), then goes on.
    private func handOver(_ taken: Taken, context: ChannelHandlerContext) {
        passOn(taken.head, body: taken.body, end: .some(nil), context: context)
        state = .idle
        resume(context: context, readComplete: true)
    }

    private func respond(_ taken: Taken, accepted id: String, context: ChannelHandlerContext) {
        var response = HTTPResponse(status: .accepted)
        response.headerFields[.location] = "/v1/commands/\(id)"
        response.headerFields[.contentType] = "application/json"
        taken.route.fastSubmits.increment()
        respond(
            taken, response, body: ByteBuffer(string: Gateway.acceptedBody(id: id, status: .accepted)), context: context
        )
    }

    private func respond(_ taken: Taken, problem: Problem, context: ChannelHandlerContext) {
        var response = HTTPResponse(status: problem.status)
        response.headerFields = problem.headers
        respond(taken, response, body: ByteBuffer(bytes: problem.body(instance: taken.route.path)), context: context)
    }

    /// Writes the response with the headers the router's middleware and Hummingbird add,
    /// records it, and goes on with the connection.
    private func respond(
        _ taken: Taken, _ response: HTTPResponse, body: ByteBuffer, context: ChannelHandlerContext
    ) {
        var response = response
        let head = taken.head
        let requestID = head.headerFields[.requestID] ?? Envelope.randomHex(8)
        let traceparent = head.headerFields[.traceparent]
        response.headerFields[.contentLength] = String(body.readableBytes)
        response.headerFields[.requestID] = requestID
        if let traceparent { response.headerFields[.traceparent] = traceparent }
        response.headerFields[.date] = HTTPDate.now()
        response.headerFields[.server] = Gateway.serverName
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        // A taken request's path is its route's (no parameters; the query string is not
        // logged, as on the router's path).
        gateway.requests.record(
            method: "POST", route: taken.route.path, path: taken.route.path, status: response.status.code,
            elapsed: ContinuousClock.now - taken.start, requestID: requestID, traceparent: traceparent)
        state = .idle
        if head.headerFields[.connection] == "close" {
            // Shut the output first (a FIN, as the router's path does): closing the descriptor
            // alone sends nothing while a child process spawned meanwhile holds a copy of it
            // (NIO's accepted sockets are not close-on-exec).
            context.close(mode: .output, promise: nil)
            context.close(promise: nil)
            return
        }
        resume(context: context, readComplete: false)
    }

    /// After a taken request is done: replays held parts (which may start the next
    /// submission), then held events, and resumes reading.
    private func resume(context: ChannelHandlerContext, readComplete: Bool) {
        // Parts passed on outside a read cycle need their own read-complete, which is when the
        // router's channel delivers them.
        var passed = readComplete
        while let part = held.nextPart() {
            handle(part, context: context)
            passed = true
            if case .submitting = state { break }
        }
        if passed { context.fireChannelReadComplete() }
        if case .submitting = state { return }
        held.takeRest().deliver(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Quiescing (graceful shutdown): take no new request; answer the one in hand.
        if event is ChannelShouldQuiesceEvent { quiescing = true }
        if case .submitting = state {
            held.events.append(event)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered -= 1 }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        if case .submitting = state {
            held.readDeferred = true
        } else {
            context.read()
        }
    }
}
