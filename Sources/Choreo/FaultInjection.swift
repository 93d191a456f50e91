// FaultInjection: opt-in crash points for chaos and crash-recovery tests, set by environment.

import Foundation
import Synchronization

/// Crash points enabled by `CHOREO_FAULT=<point>:<n>` (crash at the n-th time the point is
/// reached). Off unless the variable is set; used by the crash-recovery tests and `ops/chaos`.
///
/// Points: `exit-after-commit` (the batch's transaction committed, nothing published or
/// acknowledged yet); `exit-after-scheduled-publish` (the scheduler published due messages,
/// their rows not yet deleted).
public enum FaultInjection {
    /// A place where a crash can be injected.
    public enum Point: String, Sendable {
        /// After the batch transaction committed, before publish and XACK.
        case exitAfterCommit = "exit-after-commit"
        /// After the scheduler published due messages, before their rows are deleted.
        case exitAfterScheduledPublish = "exit-after-scheduled-publish"
    }

    private static let configured: (Point, Int)? = {
        guard let spec = ProcessInfo.processInfo.environment["CHOREO_FAULT"] else { return nil }
        let parts = spec.split(separator: ":")
        guard let point = parts.first.flatMap({ Point(rawValue: String($0)) }) else { return nil }
        return (point, parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()

    private static let hits = Mutex(0)

    /// Exits the process at once (no cleanup, like a crash) when `point` is configured and
    /// reached for the configured time.
    public static func reached(_ point: Point) {
        guard let (configuredPoint, nth) = configured, configuredPoint == point else { return }
        let count = hits.withLock { value -> Int in
            value += 1
            return value
        }
        if count == nth { _exit(99) }
    }
}
