// HeldInput: what a channel-level fast path (SubmitFastPath, LongWaitFastPath) holds back while
// a request it took is in hand: later request parts (pipelined requests), inbound events (a
// half-close, quiescing) that would end the connection before its answer, and a read the
// router's side asked for. Released in order once the request is answered.

import NIOCore
import NIOHTTPTypes

/// Input held back while a fast path has a request in hand.
struct HeldInput {
    /// Parts that arrived meanwhile (rare, so an array that allocates nothing until used; a
    /// ring buffer cost every connection 1 KB).
    var parts: [HTTPRequestPart] = []
    /// Inbound events that arrived meanwhile.
    var events: [Any] = []
    /// A read asked for meanwhile.
    var readDeferred = false

    /// Holds `part` when a request is in hand (`busy`) or earlier parts are still held (order
    /// is kept); false when the caller handles it now.
    mutating func hold(_ part: HTTPRequestPart, busy: Bool) -> Bool {
        guard busy || !parts.isEmpty else { return false }
        parts.append(part)
        return true
    }

    /// The oldest held part, removed.
    mutating func nextPart() -> HTTPRequestPart? {
        parts.isEmpty ? nil : parts.removeFirst()
    }

    /// What is left once the held parts are replayed and nothing is in hand: the held events,
    /// then the deferred read. Taken out first and delivered after (``Rest/deliver(context:)``),
    /// so a handler re-entered by the delivery finds its held input already empty.
    mutating func takeRest() -> Rest {
        defer {
            events.removeAll()
            readDeferred = false
        }
        return Rest(events: events, read: readDeferred)
    }

    /// Held events and a deferred read, to deliver in that order.
    struct Rest {
        let events: [Any]
        let read: Bool

        func deliver(context: ChannelHandlerContext) {
            for event in events { context.fireUserInboundEventTriggered(event) }
            if read { context.read() }
        }
    }
}
