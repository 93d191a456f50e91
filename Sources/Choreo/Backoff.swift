// Backoff: the retry delay schedule of a service, as a plain value.

import Foundation

/// Exponential backoff with jitter: the delay before delivery `n + 1` after `n` failed ones is
/// `min(initial * multiplier^(n-1), max)`, spread by ±`jitter` (a fraction).
public struct Backoff: Sendable, Equatable {
    /// Delay after the first failure, in seconds.
    public var initial: Double
    /// Upper bound of the delay, in seconds.
    public var max: Double
    /// Growth factor per failure (≥ 1).
    public var multiplier: Double
    /// Relative spread in [0, 1): 0.2 means ±20 %.
    public var jitter: Double

    /// Creates a schedule.
    public init(initial: Double = 0.2, max: Double = 30, multiplier: Double = 2, jitter: Double = 0.2) {
        self.initial = initial
        self.max = max
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay without jitter after `failures` failed deliveries (1 = after the first).
    public func baseDelay(afterFailures failures: Int) -> Double {
        let exponent = Double(Swift.max(failures - 1, 0))
        return Swift.min(initial * Foundation.pow(multiplier, exponent), max)
    }

    /// The delay after `failures` failed deliveries with jitter drawn from `unit` in [0, 1).
    public func delay(afterFailures failures: Int, unit: Double = Double.random(in: 0..<1)) -> Double {
        baseDelay(afterFailures: failures) * (1 - jitter + 2 * jitter * unit)
    }
}
