import Choreo
import ChoreoTesting
import Foundation
import Redis
import Shop
import Testing

/// The web console's HTML endpoints, served by a real gateway process with API keys.
@Suite("Web console", .timeLimit(.minutes(3)))
struct ConsoleTests {
    static let admin = "ops:console-admin-secret-1:admin"
    static let viewer = "viewer:console-viewer-secret-1"

    /// A probe service with a worker and a gateway (API keys on), and a client of it.
    static func system() async throws -> (ProbeHarness, ShopClient) {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        let environment = ["CHOREO_API_KEYS": "\(admin),\(viewer)"]
        let worker = try probe.spawnChoreo(["worker", probe.name, "--topology", path], extraEnvironment: environment)
        ChildReaper.register(worker)
        let gateway = try await probe.spawnGateway(topology: path, environment: environment)
        return (probe, ShopClient(base: "http://127.0.0.1:\(gateway.port)"))
    }

    static func login(_ client: ShopClient, _ key: String) async throws -> String {
        let reply = try await client.request(
            .POST, "/console/login", body: "key=\(key)", contentType: "application/x-www-form-urlencoded")
        #expect(reply.status == 303)
        let cookie = try #require(reply.header("set-cookie"))
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
        return String(cookie.split(separator: ";")[0])
    }

    static func csrf(_ html: String) -> String? {
        guard let range = html.range(of: "name=\"csrf\" value=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    /// A dead letter that succeeds when replayed, and one whose text is hostile HTML.
    static func deadLetters(_ probe: ProbeHarness) throws -> Envelope {
        let good = Envelope(type: "Record", data: "{\"key\":\"console\",\"value\":1}")
        for (envelope, error) in [
            (good, "database was down"),
            (
                Envelope(type: "<script>alert('type')</script>", data: "{\"x\":\"<img src=x onerror=alert(1)>\"}"),
                "<b>bold</b> error"
            ),
        ] {
            try probe.redis.xadd(
                probe.definition.deadStream,
                fields: envelope.fields + [
                    StreamField(DeadLetter.sourceStream, probe.definition.commandStream),
                    StreamField(DeadLetter.sourceID, "0-1"),
                    StreamField(DeadLetter.group, probe.name), StreamField(DeadLetter.deliveries, "5"),
                    StreamField(DeadLetter.error, error),
                    StreamField(DeadLetter.deadAt, String(Envelope.nowMilliseconds())),
                ])
        }
        return good
    }

    @Test("pages need a session; untrusted text is escaped")
    func sessionsAndEscaping() async throws {
        let (probe, client) = try await Self.system()
        _ = try Self.deadLetters(probe)
        #expect(try await client.get("/console").status == 303)
        #expect(try await client.get("/console/dead/\(probe.name)").header("location") == "/console/login")
        let bad = try await client.request(
            .POST, "/console/login", body: "key=wrong-key-wrong-key", contentType: "application/x-www-form-urlencoded")
        #expect(bad.status == 401)

        let cookie = try await Self.login(client, "console-viewer-secret-1")
        let overview = try await client.request(.GET, "/console", headers: [("cookie", cookie)])
        #expect(overview.status == 200)
        #expect(overview.body.contains(probe.name))
        #expect(overview.header("content-security-policy")?.contains("default-src 'self'") == true)
        let page = try await client.request(.GET, "/console/dead/\(probe.name)", headers: [("cookie", cookie)])
        #expect(page.status == 200)
        #expect(page.body.contains("&lt;script&gt;alert(&#39;type&#39;)&lt;/script&gt;"))
        #expect(page.body.contains("&lt;b&gt;bold&lt;/b&gt; error"))
        #expect(!page.body.contains("<script>alert"))
        #expect(!page.body.contains("<b>bold"))
        #expect(Self.csrf(page.body) == nil, "a viewer gets no action forms")
        let letters = try probe.deadLetters()
        let hostile = try #require(letters.first { $0.type.contains("script") })
        let detail = try await client.request(
            .GET, "/console/dead/\(probe.name)/\(hostile.entry.id)", headers: [("cookie", cookie)])
        #expect(detail.body.contains("&lt;img src=x onerror=alert(1)&gt;"))
        #expect(!detail.body.contains("<img src=x"))
    }

    @Test("replay and purge need the admin scope and a same-site request")
    func actionsAreProtected() async throws {
        let (probe, client) = try await Self.system()
        let good = try Self.deadLetters(probe)
        let admin = try await Self.login(client, "console-admin-secret-1")
        let page = try await client.request(.GET, "/console/dead/\(probe.name)", headers: [("cookie", admin)])
        let token = try #require(Self.csrf(page.body))
        let letter = try #require(try probe.deadLetters().first { $0.type == "Record" })
        let form = "entry=\(letter.entry.id)&csrf=\(token)"
        let type = "application/x-www-form-urlencoded"

        let noToken = try await client.request(
            .POST, "/console/dead/\(probe.name)/replay", body: "entry=\(letter.entry.id)", headers: [("cookie", admin)],
            contentType: type)
        #expect(noToken.status == 403)
        let crossSite = try await client.request(
            .POST, "/console/dead/\(probe.name)/replay", body: form,
            headers: [("cookie", admin), ("origin", "https://evil.example")], contentType: type)
        #expect(crossSite.status == 403)
        let viewer = try await Self.login(client, "console-viewer-secret-1")
        let viewerPage = try await client.request(.GET, "/console", headers: [("cookie", viewer)])
        #expect(viewerPage.status == 200)
        let noCookie = try await client.request(
            .POST, "/console/dead/\(probe.name)/replay", body: form, contentType: type)
        #expect(noCookie.status == 401)
        let viewerToken = "0000"
        let asViewer = try await client.request(
            .POST, "/console/dead/\(probe.name)/replay", body: "entry=\(letter.entry.id)&csrf=\(viewerToken)",
            headers: [("cookie", viewer)], contentType: type)
        #expect(asViewer.status == 403)
        #expect(try probe.deadLetters().count == 2, "nothing happened yet")

        let replay = try await client.request(
            .POST, "/console/dead/\(probe.name)/replay", body: form, headers: [("cookie", admin)], contentType: type)
        #expect(replay.status == 200)
        #expect(replay.body.contains("1 letter(s) replayed"))
        try await eventually("the replayed command succeeded", timeout: 20) {
            try probe.command(good.id)["status"] == "succeeded"
        }
        #expect(try probe.recordCount() == 1)

        let hostile = try #require(try probe.deadLetters().first)
        let purge = try await client.request(
            .POST, "/console/dead/\(probe.name)/purge", body: "entry=\(hostile.entry.id)&csrf=\(token)",
            headers: [("cookie", admin)], contentType: type)
        #expect(purge.status == 200)
        #expect(try probe.deadLetters().isEmpty)
        let command = try await client.request(.GET, "/console/commands/\(good.id)", headers: [("cookie", admin)])
        #expect(command.status == 200)
        #expect(command.body.contains("succeeded"))
        #expect(command.body.contains("\(probe.name): handled"))
        // A key without the admin scope sees only its own commands (this one it did not submit).
        let foreign = try await client.request(.GET, "/console/commands/\(good.id)", headers: [("cookie", viewer)])
        #expect(foreign.status == 404)
    }
}

extension ConsoleTests {
    @Test("in headless Chromium: sign in, replay a dead letter from the page, see the count drop; screenshot")
    func browser() async throws {
        let (probe, client) = try await Self.system()
        _ = try Self.deadLetters(probe)
        let screenshot =
            ProcessInfo.processInfo.environment["CHOREO_ARTIFACTS_DIR"].map { $0 + "/console.png" }
            ?? TestEnvironment.repositoryRoot + "/.build/artifacts/console.png"
        let script = TestEnvironment.repositoryRoot + "/ops/console-browser-test.py"
        let output = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("browser") + ".out"
        let line =
            "exec python3 '\(script)' '\(client.base)' '\(probe.name)' 'console-admin-secret-1' '\(screenshot)' 'Record' >'\(output)' 2>&1"
        let pid = try ChildProcess.spawn("/bin/sh", ["-c", line])
        let status = try await waitForExit(pid, timeout: 120)
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(printed)")
        #expect(printed.contains("dead letters after: 1"), "\(printed)")
        #expect(FileManager.default.fileExists(atPath: screenshot))
        #expect(try probe.recordCount() == 1, "the replayed command took effect")
    }
}
