import Choreo
import ChoreoTesting
import Foundation
import Operations
import Redis
import Shop
import Testing

/// Least privilege on Redis: `choreo acl --apply` users, proven by denials and by the whole
/// pipeline (gateway -> worker -> result) working under them.
@Suite("Redis ACL users", .timeLimit(.minutes(3)))
struct RedisACLTests {
    static func url(user: String, password: String) -> String {
        var components = URLComponents(string: TestEnvironment.redisURL)!
        components.user = user
        components.password = password
        return components.string!
    }

    static func denied(_ redis: RedisConnection, _ arguments: [String]) -> Bool {
        do {
            let reply = try redis.command(arguments)
            return reply.errorMessage?.hasPrefix("NOPERM") ?? false
        } catch {
            return "\(error)".contains("NOPERM")
        }
    }

    @Test("a service's user is denied foreign streams, the gateway's a dead stream; the pipeline works under them")
    func leastPrivilege() async throws {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        let routes = """

            routes:
              - method: POST
                path: /v1/\(probe.name)/records
                service: \(probe.name)
                command: Record
                body:
                  key: { type: string, max: 50 }
                  value: { type: integer }
            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(routes.utf8))
        try handle.close()

        let serviceURL = Self.url(user: "\(probe.name)-svc", password: TestEnvironment.uniqueName("pw"))
        let gatewayURL = Self.url(user: "\(probe.name)-gw", password: TestEnvironment.uniqueName("pw"))
        let environment = [Topology.redisURLVariable(probe.name): serviceURL, RedisACL.gatewayURLVariable: gatewayURL]
        let applied = try await runChoreo(["acl", "--apply", "--topology", path], environment: environment)
        #expect(applied.status == 0, "\(applied.errors)")
        #expect(!applied.output.contains("pw_"), "passwords are never printed")

        let service = try RedisConnection(url: serviceURL)
        #expect(try service.xlen(probe.definition.commandStream) >= 0)
        #expect(Self.denied(service, ["XADD", "someone-else.commands", "*", "a", "b"]))
        #expect(Self.denied(service, ["XRANGE", "users.dead", "-", "+"]))
        #expect(Self.denied(service, ["FLUSHALL"]))
        let gateway = try RedisConnection(url: gatewayURL)
        #expect(Self.denied(gateway, ["XRANGE", probe.definition.deadStream, "-", "+"]))
        #expect(Self.denied(gateway, ["XADD", probe.definition.deadStream, "*", "a", "b"]))
        #expect(
            Self.denied(
                gateway, ["XREADGROUP", "GROUP", probe.name, "x", "STREAMS", probe.definition.commandStream, ">"]))

        let worker = try probe.spawnChoreo(["worker", probe.name, "--topology", path], extraEnvironment: environment)
        ChildReaper.register(worker)
        let (gatewayProcess, port) = try await probe.spawnGateway(topology: path, environment: environment)
        try await eventually("the gateway ready under its ACL user", timeout: 30) {
            (try? httpGet(port: port, path: "/readyz"))?.hasPrefix("HTTP/1.1 200") ?? false
        }
        let client = ShopClient(base: "http://127.0.0.1:\(port)")
        let outcome = try await client.run("/v1/\(probe.name)/records", "{\"key\":\"acl\",\"value\":3}")
        #expect(outcome.status == "succeeded", "\(outcome.reply.body)")
        #expect(try probe.recordCount() == 1)
        kill(gatewayProcess, SIGTERM)
        kill(worker, SIGTERM)
    }
}
