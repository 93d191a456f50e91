// ScheduleSignal: how a worker process's batch processors tell its scheduler that a message
// was scheduled earlier than the scheduler planned to look again (so it is not late).

import Foundation

/// Wakes the ``Scheduler`` of this process when a committed batch scheduled a message due
/// before the scheduler's next planned look.
public final class ScheduleSignal: @unchecked Sendable {
    private let condition = NSCondition()
    /// When the scheduler plans to look next, milliseconds since the epoch.
    private var planned = Int64.max
    private var poked = false

    /// A signal with no scheduler waiting.
    public init() {}

    /// A message is due at `due` (milliseconds since the epoch).
    public func scheduled(due: Int64) {
        condition.lock()
        if due < planned {
            poked = true
            condition.signal()
        }
        condition.unlock()
    }

    /// Wakes the waiting scheduler now (to stop it).
    public func wake() {
        condition.lock()
        poked = true
        condition.signal()
        condition.unlock()
    }

    /// Waits until `deadline` (milliseconds since the epoch) or a wake-up, whichever is first.
    func wait(until deadline: Int64) {
        condition.lock()
        planned = deadline
        while !poked {
            let now = Envelope.nowMilliseconds()
            if now >= deadline { break }
            _ = condition.wait(until: Date(timeIntervalSince1970: Double(deadline) / 1000))
        }
        poked = false
        planned = .max
        condition.unlock()
    }
}
