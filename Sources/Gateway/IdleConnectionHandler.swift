// IdleConnectionHandler: closes a keep-alive connection that has carried nothing for the idle
// timeout, so idle or abandoned clients cannot exhaust file descriptors. A connection with a
// request in hand (a parked long-wait, a submission being committed) is never idle. It sits
// first among the gateway's channel handlers, so it sees every request and response, whether
// the router or the channel-level submit answers.

import NIOCore
import NIOHTTPTypes

/// Closes the connection after `timeout` without traffic while no request awaits its response.
final class IdleConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The connection's activity, as plain state (testable without a channel).
    struct Activity: Equatable {
        /// Requests whose head was read and whose response has not ended.
        var unanswered = 0
        /// A request's head was read and its end not yet.
        var reading = false
        /// When the connection last carried a part, in nanoseconds of the event loop's clock.
        var lastActive: UInt64 = 0

        mutating func read(_ part: HTTPRequestPart, at now: UInt64) {
            lastActive = now
            switch part {
            case .head:
                unanswered += 1
                reading = true
            case .body:
                break
            case .end:
                reading = false
            }
        }

        mutating func wrote(_ part: HTTPResponsePart, at now: UInt64) {
            lastActive = now
            if case .end = part { unanswered = max(0, unanswered - 1) }
        }

        /// Whether the connection may be closed at `now`: nothing has moved for `timeout`, and
        /// no fully read request awaits its answer (a long-wait is not idle).
        func isIdle(at now: UInt64, timeout: UInt64) -> Bool {
            let awaitingAnswer = unanswered > 0 && !reading
            return !awaitingAnswer && now >= lastActive + timeout
        }
    }

    private let timeout: TimeAmount
    private var activity = Activity()
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    private static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    func handlerAdded(context: ChannelHandlerContext) {
        activity.lastActive = Self.now()
        if context.channel.isActive { schedule(context: context, after: timeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activity.lastActive = Self.now()
        schedule(context: context, after: timeout)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        activity.read(unwrapInboundIn(data), at: Self.now())
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        activity.wrote(unwrapOutboundIn(data), at: Self.now())
        context.write(data, promise: promise)
    }

    private func schedule(context: ChannelHandlerContext, after delay: TimeAmount) {
        guard check == nil else { return }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        check = loop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            handler.check = nil
            handler.fire(context: context)
        }
    }

    private func fire(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let now = Self.now()
        let timeout = UInt64(max(0, self.timeout.nanoseconds))
        if activity.isIdle(at: now, timeout: timeout) {
            context.close(promise: nil)
            return
        }
        // Check again when the quiet period could next run out.
        let due = activity.lastActive + timeout
        let wait = due > now ? due - now : timeout
        schedule(context: context, after: .nanoseconds(Int64(wait)))
    }
}
