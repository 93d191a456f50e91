import Choreo
import ChoreoTesting
import Foundation
import Redis
import Testing

/// Tracing through swift-distributed-tracing: with CHOREO_TRACE=log a worker logs a consumer
/// span per handled message, child of the message's traceparent, and the messages it emits are
/// children of that span.
@Suite("Tracing")
struct TracingTests {
    @Test("a handled message is a consumer span in the request's trace; emitted messages are its children")
    func consumerSpans() async throws {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        let log = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("trace") + ".log"
        var environment = ProcessInfo.processInfo.environment
        environment["CHOREO_TRACE"] = "log"
        environment["LOG_LEVEL"] = "info"
        environment["REDIS_URL"] = nil
        environment["DATABASE_URL"] = nil
        let pid = try ChildProcess.spawn(
            "/bin/sh",
            [
                "-c",
                "exec '\(TestEnvironment.choreoBinary)' worker \(probe.name) --single --topology '\(path)' 2>'\(log)'",
            ],
            environment: environment)
        ChildReaper.register(pid)
        try await eventually("a live worker", timeout: 30) { try !probe.liveWorkers().isEmpty }

        let trace = "0af7651916cd43dd8448eb211c80319c"
        let parentSpan = "b7ad6b7169203331"
        let envelope = Envelope(
            type: "Record", data: "{\"key\":\"traced\",\"value\":1}", traceparent: "00-\(trace)-\(parentSpan)-01")
        try probe.redis.xadd(probe.definition.commandStream, fields: envelope.fields)
        let span = try await eventuallyValue("the consumer span logged", timeout: 20) { () -> [String: Any]? in
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.first { $0["msg"] as? String == "span Record" }
        }
        #expect(span["trace_id"] as? String == trace)
        #expect(span["parent_span_id"] as? String == parentSpan)
        #expect(span["span_kind"] as? String == "consumer")
        #expect(span["attr.messaging.message.id"] as? String == envelope.id)
        let spanID = try #require(span["span_id"] as? String)
        #expect(spanID != parentSpan)
        let emitted = try await eventuallyValue("the Recorded event") {
            try probe.redis.xrange(probe.definition.eventStream).first
        }
        #expect(emitted["traceparent"] == "00-\(trace)-\(spanID)-01")
        kill(pid, SIGTERM)
    }
}
