// OTLPExportTests: the gateway and every worker export spans over OTLP/HTTP to a real receiver
// (ops/otlp-receiver.py, opentelemetry-proto) when OTEL_EXPORTER_OTLP_ENDPOINT is set: one trace
// per request through the whole saga, each service its own service.name, parents matching the
// messages' causation; with the collector down the shop keeps working and counts what it drops.

import Choreo
import ChoreoTelemetry
import ChoreoTesting
import Foundation
import Shop
import Testing

@Suite("OTLP span export end to end", .serialized, .timeLimit(.minutes(5)))
struct OTLPExportTests {
    /// The variables a deployment sets, with a short batch delay so the test does not wait 5 s.
    static func variables(endpoint: String) -> [String: String] {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test", "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
        ]
    }

    /// The saga's steps (`choreo trace --json`): message id, type, causation, and the services
    /// that handled it.
    static func steps(_ system: ShopSystem, _ correlation: String, last type: String) async throws -> [[String: Any]] {
        try await eventuallyValue("\(type) in the saga's trace", timeout: 20) { () -> [[String: Any]]? in
            let run = try await runChoreo(
                ["trace", correlation, "--json", "--topology", system.topologyPath], environment: system.environment)
            let steps = (run.json as? [String: Any])?["steps"] as? [[String: Any]] ?? []
            return steps.contains { $0["type"] as? String == type } ? steps : nil
        }
    }

    static func handledBy(_ step: [String: Any]) -> [String] {
        (step["handlings"] as? [[String: Any]] ?? []).filter { $0["outcome"] as? String == "handled" }
            .compactMap { $0["service"] as? String }
    }

    @Test("one trace per request: gateway and all four services, consumer spans parented by the message's cause")
    func tracesOfAUserAndAnOrder() async throws {
        let receiver = try await OTLPReceiver.start()
        let system = try await ShopSystem.start(
            redisURL: try TestEnvironment.redisDatabase(8), ownDatabase: true,
            extraEnvironment: Self.variables(endpoint: receiver.endpoint))
        let client = ShopClient(base: system.base)
        let user = try await ShopTests.user(client, funds: 10_000)
        let widget = try await ShopTests.product(client, price: 250, stock: 5)
        let outcome = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 2)]))
        #expect(outcome.status == "succeeded", "\(outcome.reply.body)")

        // The order: every handling of every step has its consumer span, in one trace.
        let steps = try await Self.steps(system, outcome.id, last: "OrderConfirmed")
        let handlings = steps.flatMap { step in
            Self.handledBy(step).map { (service: $0, id: step["id"] as? String ?? "", step: step) }
        }
        #expect(Set(handlings.map(\.service)) == ["orders", "inventory", "payments"], "\(handlings.map(\.service))")
        var spans: [ReceivedSpan] = []
        try await eventually("a consumer span for each of the \(handlings.count) handlings", timeout: 20) {
            spans = try receiver.spans()
            return handlings.allSatisfy { handling in
                spans.contains {
                    $0.service == handling.service && $0.attributes["messaging.message.id"] == handling.id
                }
            }
        }
        let place = try #require(spans.first { $0.attributes["messaging.message.id"] == outcome.id })
        let trace = spans.filter { $0.traceID == place.traceID }
        #expect(trace.count >= handlings.count + 1)
        let root = try #require(trace.first { $0.parentSpanID.isEmpty }, "no root span in \(trace)")
        #expect(trace.filter { $0.parentSpanID.isEmpty }.count == 1, "one root: \(trace)")
        #expect(root.service == "gateway")
        #expect(root.kind == "server")
        #expect(place.parentSpanID == root.spanID, "PlaceOrder's span is a child of the gateway's request span")
        #expect(place.service == "orders")
        #expect(place.name == "PlaceOrder")
        for handling in handlings {
            let span = try #require(
                trace.first { $0.service == handling.service && $0.attributes["messaging.message.id"] == handling.id },
                "\(handling.service) handling \(handling.id) is not in the order's trace")
            #expect(span.kind == "consumer")
            #expect(span.attributes["messaging.system"] == "redis")
            #expect(span.attributes["messaging.consumer.group.name"] == handling.service)
            #expect(span.attributes["messaging.operation.type"] == "process")
            #expect(span.attributes["messaging.destination.name"] == handling.step["stream"] as? String)
            #expect(span.attributes["messaging.message.conversation_id"] == outcome.id)
            #expect(span.resource["service.namespace"] == "choreo")
            #expect(span.resource["deployment.environment"] == "test")
            // An event's span is the child of the span that emitted it: the handling of its cause.
            if let causation = handling.step["causation"] as? String, !causation.isEmpty, causation != handling.id {
                let parent = try #require(trace.first { $0.spanID == span.parentSpanID }, "parent of \(span.name)")
                #expect(parent.attributes["messaging.message.id"] == causation, "\(span.name) <- \(parent.name)")
            }
        }

        // The user's creation reaches users (and, through UserCreated, orders and payments) in a
        // trace of its own, rooted at the gateway too.
        let created = try #require(spans.first { $0.service == "users" && $0.name == "CreateUser" })
        #expect(created.traceID != place.traceID)
        let userTrace = spans.filter { $0.traceID == created.traceID }
        #expect(userTrace.contains { $0.service == "gateway" && $0.parentSpanID.isEmpty })
        try await eventually("UserCreated handled by orders and payments in the user's trace", timeout: 20) {
            let services = Set(
                try receiver.spans().filter { $0.traceID == created.traceID && $0.name == "UserCreated" }.map(\.service)
            )
            return services.isSuperset(of: ["orders", "payments"])
        }
        try await system.stop()
    }

    @Test("OTEL_METRICS_EXPORTER=otlp: the gateway and the workers send their metrics too; /metrics stays")
    func metricsOverOTLP() async throws {
        let receiver = try await OTLPReceiver.start()
        var variables = Self.variables(endpoint: receiver.endpoint)
        variables["OTEL_METRICS_EXPORTER"] = "otlp"
        variables["OTEL_METRIC_EXPORT_INTERVAL"] = "500"
        let system = try await ShopSystem.start(
            redisURL: try TestEnvironment.redisDatabase(12), ownDatabase: true, extraEnvironment: variables)
        let client = ShopClient(base: system.base)
        let user = try await ShopTests.user(client, funds: 10_000)
        let widget = try await ShopTests.product(client, price: 250, stock: 5)
        let outcome = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 1)]))
        #expect(outcome.status == "succeeded", "\(outcome.reply.body)")
        try await eventually("the gateway's and the services' metrics at the receiver", timeout: 30) {
            let metrics = try receiver.metrics()
            return metrics.contains { $0.name == "choreo_gateway_requests_total" && $0.service == "gateway" }
                && ["orders", "inventory", "payments"].allSatisfy { service in
                    metrics.contains { $0.name == "choreo_messages_total" && $0.service == service }
                }
        }
        // The Prometheus scrape is unchanged.
        #expect(try await client.get("/metrics").body.contains("choreo_gateway_requests_total"))
        try await system.stop()
    }

    @Test("collector down: orders still succeed; the failed exports and dropped spans are counted")
    func collectorDown() async throws {
        let closed = try freePort()
        let system = try await ShopSystem.start(
            redisURL: try TestEnvironment.redisDatabase(9), ownDatabase: true,
            extraEnvironment: Self.variables(endpoint: "http://127.0.0.1:\(closed)"))
        let client = ShopClient(base: system.base)
        let user = try await ShopTests.user(client, funds: 10_000)
        let widget = try await ShopTests.product(client, price: 250, stock: 50)
        for _ in 0..<5 {
            let outcome = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 1)]))
            #expect(outcome.status == "succeeded", "\(outcome.reply.body)")
        }
        try await eventually("the gateway to count its failed exports", timeout: 20) {
            let metrics = try await client.get("/metrics").body
            return Self.value(metrics, "choreo_trace_export_failures_total") > 0
                && Self.value(metrics, "choreo_trace_spans_dropped_total") > 0
        }
        try await system.stop()
    }

    @Test("export switches on only with the standard variables, and off with OTEL_SDK_DISABLED or none")
    func whenExportIsOn() {
        #expect(!OTLPExport.isRequested(in: [:]))
        #expect(!OTLPExport.isRequested(in: ["OTEL_EXPORTER_OTLP_ENDPOINT": ""]))
        #expect(OTLPExport.isRequested(in: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(OTLPExport.isRequested(in: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"]))
        #expect(OTLPExport.isRequested(in: ["OTEL_TRACES_EXPORTER": "otlp"]))
        #expect(
            !OTLPExport.isRequested(in: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"]))
        #expect(
            !OTLPExport.isRequested(in: [
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none",
            ]))
        // Metrics follow only when asked for, and only with export on.
        #expect(!OTLPExport.metricsRequested(in: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"]))
        #expect(
            OTLPExport.metricsRequested(in: [
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "otlp",
            ]))
        #expect(!OTLPExport.metricsRequested(in: ["OTEL_METRICS_EXPORTER": "otlp"]))
    }

    @Test("OTLP over gRPC (not built) stops the process at start with the reason, before it serves")
    func grpcIsRefused() async throws {
        let run = try await runChoreo(
            [
                "gateway", "--port", String(try freePort()), "--topology",
                TestEnvironment.repositoryRoot + "/streams.yml",
            ],
            environment: [
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            ],
            timeout: 30)
        #expect(run.status != 0)
        #expect(run.errors.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"), "\(run.errors)")
    }

    /// The value of an unlabelled Prometheus sample, 0 when absent.
    static func value(_ metrics: String, _ name: String) -> Double {
        for line in metrics.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
}
