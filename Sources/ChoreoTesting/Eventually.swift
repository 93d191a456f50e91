// Eventually: wait for a condition with a timeout instead of sleeping a fixed time.

import Foundation

/// The condition passed to ``eventually(timeout:interval:_:_:)`` did not hold in time.
public struct TimeoutError: Error, CustomStringConvertible {
    /// What was awaited.
    public let what: String
    /// How long it was awaited, in seconds.
    public let seconds: Double
    /// The last error the condition threw, if any.
    public let lastError: String?

    /// Creates a timeout error.
    public init(what: String, seconds: Double, lastError: String?) {
        self.what = what
        self.seconds = seconds
        self.lastError = lastError
    }

    public var description: String {
        "timed out after \(seconds) s waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? "")
    }
}

/// Polls `condition` until it returns `true`, and throws ``TimeoutError`` if it does not
/// within `timeout` seconds. Errors thrown by the condition count as "not yet".
public func eventually(
    _ what: String = "condition", timeout: Double = 10, interval: Double = 0.02,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: String?
    while true {
        do {
            if try await condition() { return }
        } catch {
            lastError = "\(error)"
        }
        if Date() >= deadline { throw TimeoutError(what: what, seconds: timeout, lastError: lastError) }
        try await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
    }
}

/// Polls `value` until it returns non-nil and returns it, or throws ``TimeoutError``.
public func eventuallyValue<T>(
    _ what: String = "value", timeout: Double = 10, interval: Double = 0.02, _ value: () async throws -> T?
) async throws -> T {
    var result: T?
    try await eventually(what, timeout: timeout, interval: interval) {
        result = try await value()
        return result != nil
    }
    return result!
}
