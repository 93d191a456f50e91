// ConsoleHistory: the console's recent system snapshots, kept on the server (a background
// sampler adds one every few seconds while the gateway runs), so the overview's throughput is
// right on its first paint and its chart covers the last minutes, whoever was looking. A plain
// value: what it keeps and what it derives (rates per consumer group, per stream, per service)
// is testable without Redis.

import Choreo
import Operations

/// Recent snapshots, oldest first, within ``window`` milliseconds.
struct ConsoleHistory: Sendable {
    /// How far back the chart reaches, in ms (10 minutes).
    static let window: Int64 = 10 * 60 * 1000
    /// The shortest span a rate is computed over, in ms (shorter is noise).
    static let minimumSpan: Int64 = 1000

    private(set) var samples: [SystemStatus] = []

    /// Adds `status` (taken after the newest sample) and forgets samples older than the window.
    mutating func add(_ status: SystemStatus) {
        if let last = samples.last, status.at <= last.at { return }
        samples.append(status)
        let oldest = status.at - Self.window
        if let keep = samples.firstIndex(where: { $0.at >= oldest }), keep > 0 { samples.removeFirst(keep) }
    }

    /// The newest sample at least ``minimumSpan`` older than `now`: the baseline of a fresh
    /// snapshot's rates.
    func baseline(before now: Int64) -> SystemStatus? {
        samples.last { now - $0.at >= Self.minimumSpan }
    }

    /// The newest sample's time, if any.
    var newest: Int64? { samples.last?.at }

    /// One point of a rate series: the end of an interval and the rate over it.
    struct Point: Sendable, Equatable {
        var at: Int64
        var perSecond: Double
    }

    /// Entries `service`'s group read per second, summed over its streams, between consecutive
    /// samples.
    func serviceRates(_ service: String) -> [Point] {
        series { status in
            status.services.first { $0.name == service }.map { service in
                service.streams.compactMap(\.entriesRead).reduce(0, +)
            }
        }
    }

    /// Entries added to `stream` per second (what its publishers wrote): read + lag of any
    /// group that reads it, between consecutive samples.
    func streamRates(_ stream: String) -> [Point] {
        series { status in
            for service in status.services {
                if let entry = service.reading(of: stream), let read = entry.entriesRead,
                    let lag = entry.lag
                {
                    return read + lag
                }
            }
            return nil
        }
    }

    /// The rate of a counter that `value` reads from each sample (nil: not known then).
    private func series(_ value: (SystemStatus) -> Int?) -> [Point] {
        var points: [Point] = []
        var previous: (at: Int64, value: Int)?
        for sample in samples {
            guard let current = value(sample) else {
                previous = nil
                continue
            }
            if let previous, sample.at - previous.at >= Self.minimumSpan, current >= previous.value {
                points.append(
                    Point(
                        at: sample.at,
                        perSecond: Double(current - previous.value) * 1000 / Double(sample.at - previous.at)
                    ))
            }
            previous = (sample.at, current)
        }
        return points
    }
}
