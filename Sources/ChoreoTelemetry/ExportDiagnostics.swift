// ExportDiagnostics: the log handler swift-otel's exporter reports to. Responsible for turning
// what the exporter only logs into counters an operator can alert on (spans dropped because the
// queue was full, batches a collector did not take) and for keeping a collector outage from
// flooding the process's log: the first failure is logged, then one summary line a minute.

import Choreo
import Foundation
import Logging
import Metrics
import Synchronization

/// Counts dropped spans and failed exports, and logs them at a bounded rate.
struct ExportDiagnostics: LogHandler {
    /// Spans lost before reaching a collector: the batch queue was full, or their batch failed.
    static let droppedSpans: Counter = {
        _ = MetricsServer.sharedRegistry  // the metrics system first, so the counter reaches it
        return Counter(label: "choreo_trace_spans_dropped_total")
    }()
    /// Export requests that failed (collector down, refused, timed out).
    static let failedExports: Counter = {
        _ = MetricsServer.sharedRegistry
        return Counter(label: "choreo_trace_export_failures_total")
    }()

    /// What was counted since the last line written.
    struct Pending {
        var failures = 0
        var dropped = 0
        var lastLine: ContinuousClock.Instant?
        var lastError = ""
    }

    static let pending = Mutex(Pending())
    /// At most one summary line per this interval while exports keep failing.
    static let interval = Duration.seconds(60)

    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning
    let label: String
    let output: JSONLogHandler

    init(label: String) {
        self.label = label
        self.output = JSONLogHandler(label: label)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let message = "\(event.message)"
        let fields = (event.metadata ?? [:]).merging(metadata) { first, _ in first }
        if message.hasPrefix("Spans were dropped") {
            let count = Int("\(fields["dropped_count"] ?? "0")") ?? 0
            Self.droppedSpans.increment(by: Int64(count))
            report(failures: 0, dropped: count, error: "the span queue was full", event: event)
        } else if message.hasPrefix("Failed to export batch") {
            let count = Int("\(fields["batch_size"] ?? "0")") ?? 0
            Self.failedExports.increment()
            Self.droppedSpans.increment(by: Int64(count))
            let error = event.error.map { "\($0)" } ?? "\(fields["error"] ?? "unknown error")"
            report(failures: 1, dropped: count, error: error, event: event)
        } else {
            output.log(event: event)
        }
    }

    /// Adds to the pending counts; writes one line for the first problem and then at most one a
    /// minute, with the counts since the last line.
    func report(failures: Int, dropped: Int, error: String, event: LogEvent) {
        let now = ContinuousClock.now
        let line = Self.pending.withLock { pending -> Pending? in
            pending.failures += failures
            pending.dropped += dropped
            pending.lastError = error
            if let last = pending.lastLine, now - last < Self.interval { return nil }
            let summary = pending
            pending = Pending(lastLine: now)
            return summary
        }
        guard let line else { return }
        let summary = LogEvent(
            level: .warning, message: "span export is failing; spans are dropped, the system keeps running",
            metadata: [
                "failed_exports": "\(line.failures)", "dropped_spans": "\(line.dropped)",
                "last_error": "\(line.lastError)", "next_report_in_s": "\(Int(Self.interval.components.seconds))",
            ], source: event.source, file: event.file, function: event.function, line: event.line)
        output.log(event: summary)
    }
}
