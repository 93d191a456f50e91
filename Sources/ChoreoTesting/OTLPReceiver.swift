// OTLPReceiver: a real OTLP/HTTP trace receiver for tests (ops/otlp-receiver.py, decoding with
// the opentelemetry-proto package), started on a free port, and the spans it received.

import Choreo
import Foundation

/// One span as the receiver decoded it.
public struct ReceivedSpan: Sendable, Equatable {
    public var traceID: String
    public var spanID: String
    /// Empty for a root span.
    public var parentSpanID: String
    public var name: String
    /// `server`, `consumer`, ...
    public var kind: String
    /// The resource's `service.name`.
    public var service: String
    /// Span attributes, as text.
    public var attributes: [String: String]
    /// Resource attributes, as text.
    public var resource: [String: String]
}

/// `python3 ops/otlp-receiver.py` on a free loopback port, stopped when the test process exits.
public struct OTLPReceiver: Sendable {
    /// Its base URL, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    public let endpoint: String
    let output: String
    let metricsOutput: String

    /// Starts a receiver and waits until it listens.
    public static func start() async throws -> OTLPReceiver {
        let name = TestEnvironment.uniqueName("otlp")
        let output = TestEnvironment.workDirectory + "/\(name).jsonl"
        let portFile = TestEnvironment.workDirectory + "/\(name).port"
        let metricsOutput = TestEnvironment.workDirectory + "/\(name).metrics.jsonl"
        FileManager.default.createFile(atPath: output, contents: nil)
        FileManager.default.createFile(atPath: metricsOutput, contents: nil)
        let pid = try ChildProcess.spawn(
            "/usr/bin/env",
            [
                "python3", TestEnvironment.repositoryRoot + "/ops/otlp-receiver.py", "--port", "0", "--port-file",
                portFile, "--out", output, "--metrics-out", metricsOutput,
            ])
        ChildReaper.register(pid)
        let port = try await eventuallyValue("the OTLP receiver to listen (needs opentelemetry-proto)", timeout: 30) {
            () -> Int? in
            guard let text = try? String(contentsOfFile: portFile, encoding: .utf8) else { return nil }
            return Int(text)
        }
        return OTLPReceiver(endpoint: "http://127.0.0.1:\(port)", output: output, metricsOutput: metricsOutput)
    }

    /// Every span received so far.
    public func spans() throws -> [ReceivedSpan] {
        let text = try String(contentsOfFile: output, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw ReceiverError(line: String(line))
            }
            func texts(_ key: String) -> [String: String] {
                (object[key] as? [String: Any] ?? [:]).mapValues { "\($0)" }
            }
            return ReceivedSpan(
                traceID: object["trace_id"] as? String ?? "", spanID: object["span_id"] as? String ?? "",
                parentSpanID: object["parent_span_id"] as? String ?? "", name: object["name"] as? String ?? "",
                kind: object["kind"] as? String ?? "", service: object["service"] as? String ?? "",
                attributes: texts("attributes"), resource: texts("resource"))
        }
    }

    /// Every metric received so far: its name and the resource's `service.name`.
    public func metrics() throws -> [(name: String, service: String)] {
        let text = try String(contentsOfFile: metricsOutput, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let name = object["metric"] as? String
            else { return nil }
            return (name, object["service"] as? String ?? "")
        }
    }

    /// A line the receiver wrote that is not a span object.
    struct ReceiverError: Error, CustomStringConvertible {
        var line: String
        var description: String { "the OTLP receiver wrote a line that is not a span: \(line)" }
    }
}
