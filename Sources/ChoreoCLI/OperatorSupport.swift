// OperatorSupport: what the operator subcommands share: exit statuses (0 ok, 1 problems found,
// 2 usage or connection error), connecting with one clear error, time and duration arguments,
// tables and JSON output.

import ArgumentParser
import Choreo
import Foundation
import Redis

/// Exit statuses of the operator commands.
enum Exit {
    /// Prints `message` on stderr and exits 2 (usage or connection error).
    static func usage(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("choreo: \(message)\n".utf8))
        return ExitCode(2)
    }

    /// Exit 1: the command worked and found problems.
    static let problems = ExitCode(1)
}

/// The topology, Redis and the service an operator command works on.
struct OperatorContext {
    let topology: Topology
    let redis: RedisConnection

    init(_ options: TopologyOptions) throws {
        do {
            topology = try options.load()
        } catch let error as ValidationError {
            throw Exit.usage(error.message)
        }
        let configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: topology.redisURL)
        } catch {
            throw Exit.usage("bad Redis URL: \(error)")
        }
        do {
            redis = try RedisConnection(configuration: configuration)
        } catch {
            throw Exit.usage("cannot reach Redis at \(configuration): \(error)")
        }
    }

    func service(_ name: String) throws -> ServiceDefinition {
        guard let service = topology.service(name) else {
            throw Exit.usage(
                "unknown service '\(name)' (known: \(topology.services.map(\.name).joined(separator: ", ")))")
        }
        return service
    }
}

/// Parses `2h`, `30m`, `45s`, `7d` (that long ago), an ISO 8601 time, or ms since the epoch.
func parseTime(_ text: String, now: Date = Date()) throws -> Int64 {
    if let milliseconds = Int64(text), milliseconds > 10_000_000_000 { return milliseconds }
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    if let unit = text.last, let scale = units[unit], let amount = Double(text.dropLast()) {
        return Int64((now.timeIntervalSince1970 - amount * scale) * 1000)
    }
    let formatter = ISO8601DateFormatter()
    for options: ISO8601DateFormatter.Options in [
        [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime], [.withFullDate],
    ] {
        formatter.formatOptions = options
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
    }
    throw Exit.usage("'\(text)' is not a time: use 30m, 2h, 7d, 2026-11-29T10:00:00Z or ms since the epoch")
}

/// `2026-11-29T10:00:00.123Z`.
func isoTime(_ milliseconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}

/// `3m12s ago` style age.
func age(_ milliseconds: Int64, now: Int64 = Envelope.nowMilliseconds()) -> String {
    let seconds = max(0, (now - milliseconds) / 1000)
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
    if seconds < 86400 { return "\(seconds / 3600)h\(seconds % 3600 / 60)m" }
    return "\(seconds / 86400)d\(seconds % 86400 / 3600)h"
}

/// A text table with left-aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count {
            widths[index] = max(widths[index], cell.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

/// Shortens `text` to `length` characters with an ellipsis.
func shorten(_ text: String, _ length: Int) -> String {
    let flat = text.replacingOccurrences(of: "\n", with: " ")
    return flat.count <= length ? flat : String(flat.prefix(length - 1)) + "…"
}

/// Pretty JSON of an encodable value.
func prettyJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Whether standard output / input is a terminal.
var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }
