// LongWaitFastPath: the gateway's channel-level long-wait. A SwiftNIO handler in front of
// Hummingbird that parks a `GET /v1/commands/{id}` asking to wait (`?wait=N` or `Prefer: wait=N`)
// on the connection itself: a callback in ResultWaiters and a timer on the event loop, no
// Swift-concurrency task. A parked request through the router held its whole async call chain
// (router, middleware, handler frames: most of the ~34 KB a waiter cost); here it holds a few
// hundred bytes beyond its connection. When the result lands, the wait runs out or the gateway
// shuts down, the request goes on to the router without its wait, and the router answers it as
// a plain poll: every response, error or not, still comes from one place.
//
// It only parks what the router would park: an authenticated key (when keys are on) that may
// read the command, a command that exists and is not finished. Anything else (unknown ids,
// another principal's command, a finished one, a malformed wait, rate-limited keys) goes to the
// router at once. HTTP/1 ordering: a request is only taken while the router has nothing in hand
// on the connection; while one is parked, later parts are held (reading pauses past a few) and
// a client closing its side is answered at once.

import Choreo
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Parks long-waits on the event loop; hands every other request to the router.
final class LongWaitFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A long-wait this handler may park.
    struct Candidate {
        /// The command id.
        var id: String
        /// Seconds to wait at most (capped by the gateway's max wait).
        var wait: Double
        /// The request as the router gets it afterwards: without its wait.
        var plain: HTTPRequest
        /// The authenticated key, when keys are on.
        var key: APIKey?
    }

    /// Where the connection is, as seen by this handler.
    enum State {
        /// Between requests.
        case idle
        /// Passing a request's parts on to the router, up to its end.
        case passing
        /// A candidate's head was read; its end is awaited.
        case reading(Candidate)
        /// Parked: waiting for the result, the timer or shutdown. `generation` tells this
        /// parking's callbacks from an earlier one's.
        case parked(Candidate, generation: UInt64, token: UInt64?, timer: Scheduled<Void>?)
    }

    private let gateway: Gateway
    private var state = State.idle
    private var generation: UInt64 = 0
    private var unanswered = 0
    /// Parts, events and a read that came while parked.
    private var held = HeldInput()
    /// Held parts beyond which reading pauses while parked.
    static let maxHeld = 16
    private var quiescing = false

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    /// The long-wait in `head`, when it is one this handler may park.
    static func candidate(_ head: HTTPRequest, configuration: GatewayConfiguration) -> Candidate? {
        guard head.method == .get, let full = head.path, full.hasPrefix("/v1/commands/") else { return nil }
        var path = Substring(full)
        var query: Substring = ""
        if let mark = full.firstIndex(of: "?") {
            path = full[..<mark]
            query = full[full.index(after: mark)...]
        }
        let id = path.dropFirst("/v1/commands/".count)
        guard !id.isEmpty, id.count <= 64, !id.contains("/"), !id.contains("%") else { return nil }
        // The wait, as the router reads it (`?wait=` wins over `Prefer: wait=`); a malformed
        // or zero one is the router's to answer.
        let (preferred, prefer) = Gateway.preferWait(head.headerFields[.prefer])
        var text = preferred
        var kept: [Substring] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: false) {
            if item.hasPrefix("wait=") { text = item.dropFirst(5) } else if !item.isEmpty { kept.append(item) }
        }
        guard let text, let seconds = Gateway.waitValue(text), seconds > 0 else { return nil }
        var key: APIKey?
        if configuration.keys.isEnabled {
            guard configuration.rateLimit == nil,
                let found = configuration.keys.authenticate(authorization: head.headerFields[.authorization]),
                found.allows(String(path))
            else { return nil }
            key = found
        }
        var plain = head
        plain.path = String(path) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
        plain.headerFields[.prefer] = prefer.isEmpty ? nil : prefer.joined(separator: ",")
        return Candidate(id: String(id), wait: min(seconds, configuration.maxWait), plain: plain, key: key)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        var busy = false
        if case .parked = state { busy = true }
        if !held.hold(part, busy: busy) { handle(part, context: context) }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if !quiescing, unanswered == 0, let candidate = Self.candidate(head, configuration: gateway.configuration) {
                state = .reading(candidate)
            } else {
                unanswered += 1
                state = .passing
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.passing, _):
            context.fireChannelRead(wrapInboundOut(part))
        case (.reading(let candidate), .end(let trailers)) where trailers == nil:
            park(candidate, context: context)
        case (.reading(let candidate), _):
            // A GET with a body or trailers: unusual, the router decides.
            unanswered += 1
            state = part.isEnd ? .idle : .passing
            context.fireChannelRead(wrapInboundOut(.head(candidate.plain)))
            context.fireChannelRead(wrapInboundOut(part))
        default:
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// Registers the waiter first, then reads the command (a result landing in between still
    /// wakes it); stays parked only when the router would have waited.
    private func park(_ candidate: Candidate, context: ChannelHandlerContext) {
        generation &+= 1
        let current = generation
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let token = gateway.waiters.park(candidate.id) { _ in
            loop.execute {
                let (handler, context) = bound.value
                handler.finish(current, context: context, unparked: true)
            }
        }
        guard let token else { return answer(candidate, context: context) }
        state = .parked(candidate, generation: current, token: token, timer: nil)
        let authentication = gateway.configuration.keys.isEnabled
        gateway.store.client().command(["HGETALL", Topology.commandKey(candidate.id)]) { reply in
            let record = (try? reply.get()).flatMap {
                CommandRecord(id: candidate.id, fields: $0.fieldMap.compactMapValues(\.string))
            }
            let waits =
                record.map {
                    !$0.status.isTerminal
                        && Principal.mayRead(owner: $0.principal, as: candidate.key, authentication: authentication)
                } ?? false
            loop.execute {
                let (handler, context) = bound.value
                handler.checked(current, waits: waits, context: context)
            }
        }
    }

    /// The status read after parking: keep waiting (with a timer) or answer now.
    private func checked(_ current: UInt64, waits: Bool, context: ChannelHandlerContext) {
        guard case .parked(let candidate, let generation, let token, _) = state, generation == current else { return }
        guard waits else { return finish(current, context: context, unparked: false) }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let timer = loop.scheduleTask(in: .nanoseconds(Int64(candidate.wait * 1_000_000_000))) {
            let (handler, context) = bound.value
            handler.finish(current, context: context, unparked: false)
        }
        state = .parked(candidate, generation: current, token: token, timer: timer)
    }

    /// Ends a parking (woken, timed out, not worth waiting, shutting down): the request goes to
    /// the router without its wait.
    private func finish(_ current: UInt64, context: ChannelHandlerContext, unparked: Bool) {
        guard case .parked(let candidate, let generation, let token, let timer) = state, generation == current else {
            return
        }
        release(candidate, token: token, timer: timer, unparked: unparked)
        answer(candidate, context: context)
    }

    private func release(_ candidate: Candidate, token: UInt64?, timer: Scheduled<Void>?, unparked: Bool) {
        timer?.cancel()
        if let token, !unparked { gateway.waiters.unpark(candidate.id, token: token) }
    }

    /// Hands the request, without its wait, to the router, then goes on with held parts.
    private func answer(_ candidate: Candidate, context: ChannelHandlerContext) {
        unanswered += 1
        state = .idle
        context.fireChannelRead(wrapInboundOut(.head(candidate.plain)))
        context.fireChannelRead(wrapInboundOut(.end(nil)))
        while let part = held.nextPart() {
            handle(part, context: context)
            if case .parked = state { break }
        }
        // Parts passed on outside a read cycle need their own read-complete.
        context.fireChannelReadComplete()
        if case .parked = state { return }
        held.takeRest().deliver(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Quiescing (graceful shutdown): park nothing new, and answer the parked one now. The
        // client closing its side (it went away, or half-closed): answer now too, so a client
        // that left holds nothing until its wait runs out.
        if event is ChannelShouldQuiesceEvent { quiescing = true }
        if case .parked(_, let generation, _, _) = state {
            held.events.append(event)
            if quiescing || (event as? ChannelEvent) == .inputClosed {
                finish(generation, context: context, unparked: false)
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client went away while parked: nothing to answer, nothing left behind.
        if case .parked(let candidate, _, let token, let timer) = state {
            release(candidate, token: token, timer: timer, unparked: false)
            state = .idle
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .parked(let candidate, _, let token, let timer) = state {
            release(candidate, token: token, timer: timer, unparked: false)
            state = .idle
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered -= 1 }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        // Reading goes on while parked (so a client going away is seen at once), up to a few
        // held pipelined parts; then it pauses until the parked request is answered.
        if case .parked = state, held.parts.count >= Self.maxHeld {
            held.readDeferred = true
        } else {
            context.read()
        }
    }
}

extension HTTPRequestPart {
    var isEnd: Bool {
        if case .end = self { return true }
        return false
    }
}
