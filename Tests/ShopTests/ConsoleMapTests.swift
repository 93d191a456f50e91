// ConsoleMapTests: the console's choreography views. In headless Chromium against a shop of its
// own under load: the overview's topology map draws every service and stream with rates on the
// read edges, the throughput chart has its series, a saga's waterfall has one bar per message, a
// dead-letter group is listed (screenshots of each). A gateway on a 30-service, 100-stream
// topology draws all of them in a page of bounded size. Rates are right on the first paint.

import Choreo
import ChoreoTesting
import Foundation
import Redis
import Shop
import Testing

@Suite("Console map, chart and waterfall", .serialized, .timeLimit(.minutes(5)))
struct ConsoleMapTests {
    /// The streams the reference shop's map draws: each service's commands and every events
    /// stream someone reads.
    static let shopStreams = ["users", "orders", "inventory", "payments"].flatMap {
        ["{\($0)}.commands", "{\($0)}.events"]
    }

    @Test("in Chromium, under load: map with every service and stream and moving rates, chart, waterfall, dead letters")
    func browser() async throws {
        let system = try await ShopSystem.start(redisURL: try TestEnvironment.redisDatabase(10), ownDatabase: true)
        let client = ShopClient(base: system.base)
        let user = try await ShopTests.user(client, funds: 10_000)
        let widget = try await ShopTests.product(client, price: 250, stock: 5)
        let outcome = try await client.run("/v1/orders", ShopTests.order(user, [(widget, 2)]))
        #expect(outcome.status == "succeeded", "\(outcome.reply.body)")
        let run = try await eventuallyValue("the order's saga traced to its end", timeout: 20) { () -> [Any]? in
            let run = try await runChoreo(
                ["trace", outcome.id, "--json", "--topology", system.topologyPath], environment: system.environment)
            let steps = (run.json as? [String: Any])?["steps"] as? [Any] ?? []
            let types = steps.compactMap { ($0 as? [String: Any])?["type"] as? String }
            return types.contains("OrderConfirmed") ? steps : nil
        }
        // A poison command: a CreateProduct without its fields is dead-lettered with the reason.
        let redis = try RedisConnection(url: system.environment["REDIS_URL"]!)
        try redis.xadd("{inventory}.commands", fields: Envelope(type: "CreateProduct", data: "{\"sku\":1}").fields)
        try await eventually("the poison command dead-lettered", timeout: 20) {
            try redis.xlen("{inventory}.dead") >= 1
        }
        // Load while the browser looks: orders at 40/s for a minute (stopped when done).
        let load = try ChildProcess.spawn(
            TestEnvironment.choreoBinary,
            [
                "load", "--gateway", system.base, "--orders", "2400", "--rate", "40", "--users", "10", "--products",
                "10",
            ],
            environment: system.environment)
        ChildReaper.register(load)
        defer { kill(load, SIGTERM) }
        // Right on the first paint: a fresh page load (no earlier view of this client) shows
        // orders' throughput above zero, measured against the console's own samples.
        try await eventually("a first paint with orders' throughput above zero", timeout: 30, interval: 0.5) {
            let page = try await client.get("/console").body
            return Self.rate(of: "orders", in: page) ?? 0 > 0
        }
        let folder =
            ProcessInfo.processInfo.environment["CHOREO_ARTIFACTS_DIR"]
            ?? TestEnvironment.repositoryRoot + "/.build/artifacts"
        let output = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("browser") + ".out"
        let arguments = [
            TestEnvironment.repositoryRoot + "/ops/console-browser-test.py", "--shop", system.base, folder,
            "--services", "users,orders,inventory,payments", "--streams", Self.shopStreams.joined(separator: ","),
            "--command", outcome.id, "--steps", String(run.count), "--dead-service", "inventory", "--dead-type",
            "CreateProduct",
        ]
        let line = "exec python3 " + arguments.map { "'\($0)'" }.joined(separator: " ") + " >'\(output)' 2>&1"
        let pid = try ChildProcess.spawn("/bin/sh", ["-c", line])
        let status = try await waitForExit(pid, timeout: 150)
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(printed)")
        #expect(printed.contains("shop console: ok"), "\(printed)")
        for name in ["console-overview-map.png", "console-saga-waterfall.png", "console-dead-group.png"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/" + name), "\(name)")
        }
        kill(load, SIGTERM)
        try await system.stop()
    }

    /// A topology of 30 services and 100 drawn streams: each service's commands and events
    /// (read by the next service), and 40 feeds written by one service and read by another.
    static func largeTopology() -> String {
        var text = "version: 1\nredis: redis://127.0.0.1:6379/0\npostgres: postgres://x@127.0.0.1/x\nservices:\n"
        let names = (1...30).map { String(format: "s%02d", $0) }
        for (index, name) in names.enumerated() {
            let previous = names[(index + names.count - 1) % names.count]
            let feedsRead = (1...40).filter { ($0 + 7) % 30 == index }.map { "feed\($0)" }
            let feedsWritten = (1...40).filter { $0 % 30 == index }.map { "feed\($0)" }
            text += "  \(name):\n    consumes: [\(([previous + ".events"] + feedsRead).joined(separator: ", "))]\n"
            if !feedsWritten.isEmpty { text += "    publishes: [\(feedsWritten.joined(separator: ", "))]\n" }
        }
        text += "routes:\n"
        for name in names {
            text += "  - { method: POST, path: /v1/\(name), service: \(name), command: Do\(name) }\n"
        }
        return text
    }

    @Test("30 services and 100 streams: the overview draws every one, in a page of bounded size")
    func largeTopologyOverview() async throws {
        let path = TestEnvironment.workDirectory + "/\(TestEnvironment.uniqueName("large")).yml"
        try Self.largeTopology().write(toFile: path, atomically: true, encoding: .utf8)
        let port = try freePort()
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = try TestEnvironment.redisDatabase(11)
        environment["DATABASE_URL"] = TestEnvironment.databaseURL
        environment["LOG_LEVEL"] = "warning"
        environment["CHOREO_API_KEYS"] = nil
        environment["CHOREO_API_KEYS_FILE"] = nil
        let gateway = try ChildProcess.spawn(
            TestEnvironment.choreoBinary, ["gateway", "--port", String(port), "--topology", path],
            environment: environment)
        ChildReaper.register(gateway)
        defer { kill(gateway, SIGTERM) }
        let client = ShopClient(base: "http://127.0.0.1:\(port)")
        let page = try await eventuallyValue("the console's overview", timeout: 30) { () -> String? in
            let reply = try await client.get("/console")
            return reply.status == 200 ? reply.body : nil
        }
        let services = Self.values(of: "node service", in: page)
        let streams = Self.values(of: "node stream", in: page)
        #expect(Set(services) == Set((1...30).map { String(format: "s%02d", $0) }), "\(services)")
        #expect(streams.count == 100, "\(streams.count) streams drawn")
        #expect(Set(streams).count == 100)
        #expect(streams.contains("feed40") && streams.contains("{s30}.events"))
        // Bounded: the map is a few thousand pixels tall (it scrolls in its box), the page well
        // under a megabyte.
        let height = try #require(Self.mapHeight(page))
        #expect(height < 100 * 38, "map height \(height)")
        #expect(page.utf8.count < 1_000_000, "\(page.utf8.count) bytes")
        #expect(page.contains("class=\"map-scroll\""))
    }

    /// The `data-name` of every `<g class="KIND...">` in `html`.
    static func values(of kind: String, in html: String) -> [String] {
        html.components(separatedBy: "<g class=\"\(kind)").dropFirst().compactMap { part in
            guard let start = part.range(of: "data-name=\"") else { return nil }
            return String(part[start.upperBound...].prefix { $0 != "\"" })
                .replacingOccurrences(of: "&quot;", with: "\"")
        }
    }

    /// The overview table's throughput of `service` (nil while measuring).
    static func rate(of service: String, in html: String) -> Double? {
        guard let cell = html.range(of: "class=\"rate\" data-service=\"\(service)\" data-rate=\"") else { return nil }
        return Double(html[cell.upperBound...].prefix { $0 != "\"" })
    }

    static func mapHeight(_ html: String) -> Double? {
        guard let svg = html.range(of: "<svg class=\"map\""),
            let height = html[svg.upperBound...].range(of: "height=\"")
        else { return nil }
        return Double(html[height.upperBound...].prefix { $0 != "\"" })
    }
}
