// ReadmeExampleTests: the README's example service cannot rot: its three code blocks are the
// files they claim to be, and the example answers the README's request through a real
// gateway and worker pool (`choreo up` on ops/examples/hello.yml).

import Choreo
import ChoreoTesting
import Foundation
import Testing

@Suite("README example")
struct ReadmeExampleTests {
    static let root = TestEnvironment.repositoryRoot

    static func file(_ path: String) throws -> String {
        try String(contentsOfFile: root + "/" + path, encoding: .utf8)
    }

    @Test("the README shows Sources/Hello/Hello.swift, ops/examples/hello.yml and its test verbatim")
    func blocksAreTheFiles() throws {
        let readme = try Self.file("README.md")
        for (language, path) in [
            ("swift", "Sources/Hello/Hello.swift"), ("yaml", "ops/examples/hello.yml"),
            ("swift", "Tests/ServiceTests/HelloTests.swift"),
        ] {
            #expect(
                readme.contains("```\(language)\n" + (try Self.file(path)) + "```"), "README's copy of \(path) differs")
        }
        #expect(readme.contains("-d '{\"name\":\"Ann\"}' http://127.0.0.1:8080/v1/greetings"))
    }

    @Test("the example runs: POST /v1/greetings is accepted, and its result is the greeting")
    func exampleRuns() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = TestEnvironment.redisURL
        environment["DATABASE_URL"] = TestEnvironment.databaseURL
        environment["LOG_LEVEL"] = "warning"
        environment["CHOREO_API_KEYS"] = nil
        environment["CHOREO_TOPOLOGY"] = Self.root + "/ops/examples/hello.yml"
        let migrate = try ChildProcess.spawn(TestEnvironment.choreoBinary, ["migrate"], environment: environment)
        #expect(try await waitForExit(migrate, timeout: 120) == 0)
        let port = try freePort()
        let pid = try ChildProcess.spawn(
            TestEnvironment.choreoBinary, ["up", "--port", String(port)], environment: environment)
        ChildReaper.register(pid)
        defer { kill(pid, SIGTERM) }
        try await eventually("the example's gateway to be ready", timeout: 90) {
            (try? httpGet(port: port, path: "/readyz"))?.hasPrefix("HTTP/1.1 200") ?? false
        }
        let connection = try RawHTTPConnection(port: port)
        try await connection.send(
            RawHTTPConnection.request(
                "POST", "/v1/greetings", headers: [("Content-Type", "application/json")], body: #"{"name":"Ann"}"#))
        let accepted = try await connection.response()
        #expect(accepted.status == 202, "\(accepted.body)")
        let body = try JSONSerialization.jsonObject(with: Data(accepted.body.utf8)) as? [String: Any]
        let id = try #require(body?["id"] as? String)
        try await connection.send(RawHTTPConnection.request("GET", "/v1/commands/\(id)?wait=10"))
        let answered = try await connection.response()
        let record = try JSONSerialization.jsonObject(with: Data(answered.body.utf8)) as? [String: Any]
        #expect(record?["status"] as? String == "succeeded", "\(answered.body)")
        let result = record?["result"] as? [String: Any]
        #expect(result?["greeting"] as? String == "Hello, Ann!", "\(answered.body)")
        // The gateway also serves the streams' contract.
        try await connection.send(RawHTTPConnection.request("GET", "/asyncapi.yaml"))
        let asyncapi = try await connection.response()
        #expect(asyncapi.status == 200)
        #expect(asyncapi.body.hasPrefix("asyncapi: 3.0.0"))
        #expect(asyncapi.body.contains("Greeted:"), "\(asyncapi.body.prefix(400))")
    }
}
