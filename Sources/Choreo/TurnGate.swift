// TurnGate: a fixed number of permits handed out in arrival order, so the partition loops of
// one process take turns handling batches (partition_concurrency at a time) and none starves.

import Foundation

/// At most `permits` holders at once, admitted first come, first served.
final class TurnGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var free: Int
    private var nextTicket: UInt64 = 0
    /// The ticket admitted next.
    private var serving: UInt64 = 0

    /// A gate with `permits` permits (at least 1).
    init(permits: Int) { free = max(1, permits) }

    /// Runs `body` holding a permit, after every earlier arrival got one.
    func withTurn<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        let ticket = nextTicket
        nextTicket += 1
        while ticket != serving || free == 0 { condition.wait() }
        serving += 1
        free -= 1
        condition.broadcast()
        condition.unlock()
        defer {
            condition.lock()
            free += 1
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}
