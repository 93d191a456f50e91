// JSONLogHandler: swift-log handler writing one JSON object per line to stderr, with the
// metadata (service, message id, correlation and trace ids) as top-level keys.

import Foundation
import Logging

/// Writes structured logs as JSON lines to standard error.
public struct JSONLogHandler: LogHandler {
    /// Logger metadata.
    public var metadata: Logger.Metadata = [:]
    /// Minimum level.
    public var logLevel: Logger.Level
    let label: String

    /// Creates a handler for `label`; the level comes from `LOG_LEVEL` (default `info`).
    public init(label: String) {
        self.label = label
        self.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    }

    /// Metadata access by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one line.
    public func log(event: LogEvent) {
        var object: [String: String] = [
            "ts": Self.timestamp(), "level": event.level.rawValue, "msg": "\(event.message)", "logger": label,
        ]
        for (key, value) in metadata { object[key] = "\(value)" }
        for (key, value) in event.metadata ?? [:] { object[key] = "\(value)" }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        data.withUnsafeBytes { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }

    static func timestamp() -> String {
        let now = Date().timeIntervalSince1970
        var seconds = time_t(now)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int((now - Double(seconds)) * 1000))
    }
}
