import Choreo
import ChoreoTesting
import Foundation
import Postgres
import Redis
import Testing

/// `choreo migrate` as a returning user runs it: again and again, as the least-privilege
/// schema owner (a `CREATEROLE` login, not a superuser).
@Suite("choreo migrate", .timeLimit(.minutes(3)))
struct MigrateCommandTests {
    @Test("migrate runs any number of times as a CREATEROLE owner; the role's password follows its URL")
    func repeatedByCreateRoleOwner() async throws {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        let owner = try probe.postgres.query(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).first!
        #expect(try owner.decode(Bool.self, "rolsuper") == false, "the owner must not be a superuser")
        #expect(try owner.decode(Bool.self, "rolcreaterole") == true)
        var components = URLComponents(string: TestEnvironment.databaseURL)!
        components.user = probe.name + "_svc"
        var previous: String?
        for round in 0..<3 {
            components.password = "secret\(round)"
            let url = components.string!
            let run = try await runChoreo(
                ["migrate", "--topology", path], environment: [Topology.postgresURLVariable(probe.name): url])
            #expect(run.status == 0, "round \(round): \(run.errors)")
            let service = try PostgresConnection(url: url)
            try service.query("INSERT INTO \(probe.name).records VALUES ($1, 'k', 1, 'test')", ["m\(round)"])
            #expect(
                try service.query("SELECT count(*) AS n FROM \(probe.name).records").first?.decode(Int.self, "n")
                    == round + 1)
            if let previous {
                #expect(throws: PostgresError.self, "the rotated-out password still works") {
                    try PostgresConnection(url: previous)
                }
            }
            previous = url
        }
        let role = try probe.postgres.query(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1", [components.user!]
        ).first!
        #expect(try role.decode(Bool.self, "rolsuper") == false)
        #expect(try role.decode(Bool.self, "rolcreaterole") == false)
        #expect(try role.decode(Bool.self, "rolcreatedb") == false)
    }

    @Test("migrate moves the keys of the layout before hash tags, keeping groups, pending entries and TTLs")
    func movesOldRedisKeys() async throws {
        let probe = try ProbeHarness()
        let path = try probe.writeTopology(processes: 1)
        let redis = probe.redis
        let name = probe.name
        // The old layout, as a returning user's Redis holds it: a commands stream with a group,
        // one entry delivered and not acknowledged, one not yet delivered; a dead letter; an
        // idempotency record of a principal; old heartbeats.
        try redis.xgroupCreate("\(name).commands", group: name, startID: "0")
        let first = try redis.xadd("\(name).commands", fields: [StreamField("type", "Old1")])
        try redis.xadd("\(name).commands", fields: [StreamField("type", "Old2")])
        _ = try redis.xreadgroup(group: name, consumer: "c1", streams: [("\(name).commands", ">")], count: 1)
        try redis.xadd("\(name).dead", fields: [StreamField("type", "Dead")])
        try redis.command(["HSET", "choreo:idempotency:alice:\(name):order-1", "command", "c-1"])
        try redis.command(["EXPIRE", "choreo:idempotency:alice:\(name):order-1", "600"])
        try redis.command(["HSET", "choreo:workers:\(name)", "c1", "{}"])

        for round in 0..<2 {
            let run = try await runChoreo(["migrate", "--topology", path], environment: [:])
            #expect(run.status == 0, "round \(round): \(run.errors)")
            #expect(run.output.contains(round == 0 ? "\(name).commands -> {\(name)}.commands" : "up to date"))
        }
        #expect(try redis.command(["EXISTS", "\(name).commands", "\(name).dead"]).int == 0)
        let stream = "{\(name)}.commands"
        #expect(try redis.xlen(stream) == 2)
        #expect(try redis.xpending(stream, group: name, count: 10).map(\.id) == [first])
        let next = try redis.xreadgroup(group: name, consumer: "c2", streams: [(stream, ">")], count: 10)
        #expect(next.first?.entries.map { $0["type"] } == ["Old2"])
        #expect(try redis.xlen("{\(name)}.dead") == 1)
        let key = Topology.idempotencyKey(service: name, principal: "alice", key: "order-1")
        #expect(try redis.command(["HGET", key, "command"]).string == "c-1")
        #expect((try redis.command(["TTL", key]).int ?? 0) > 500)
        #expect(try redis.command(["EXISTS", "choreo:workers:\(name)"]).int == 0)

        // Both layouts present: the operator decides; nothing is overwritten.
        try redis.xadd("\(name).events", fields: [StreamField("type", "A")])
        try redis.xadd("{\(name)}.events", fields: [StreamField("type", "B")])
        let clash = try await runChoreo(["migrate", "--topology", path], environment: [:])
        #expect(clash.status != 0)
        #expect(clash.errors.contains("both '\(name).events' (old layout) and '{\(name)}.events' exist"))
        #expect(try redis.xlen("{\(name)}.events") == 1)
    }
}
