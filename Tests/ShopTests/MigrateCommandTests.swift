import Choreo
import ChoreoTesting
import Foundation
import Postgres
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
}
