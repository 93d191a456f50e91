import ChoreoTesting
import Foundation
import Postgres
import Testing

@Suite("Postgres connection")
struct PostgresConnectionTests {
    let db: PostgresConnection
    let table = TestEnvironment.uniqueName("t")

    init() throws {
        db = try PostgresConnection(url: TestEnvironment.databaseURL)
    }

    @Test("bound parameters round-trip quotes, unicode, NULLs and typed values")
    func parametersRoundTrip() throws {
        let tricky = "Robert'); DROP TABLE students;-- \"quoted\" \\ \u{1F600} ñ 日本"
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let row = try #require(
            try db.query(
                "SELECT $1::text AS s, $2::text AS n, $3::bigint AS i, $4::boolean AS b, $5::uuid AS u, $6::timestamptz AS t, $7::jsonb AS j, $8::int[] AS a, $9::text[] AS ta, $10::bytea AS by",
                [
                    tricky, nil, Int64.max, true, id, when, "{\"k\": [1, \"two\"]}", [1, 2, 3],
                    ["a,b", "c\"d", "NULL"],
                    PostgresBytes([0, 255, 39]),
                ]
            ).first)
        #expect(try row.decode(String.self, "s") == tricky)
        #expect(try row.decodeIfPresent(String.self, "n") == nil)
        #expect(throws: PostgresError.self) { try row.decode(String.self, "n") }
        #expect(try row.decode(Int64.self, "i") == Int64.max)
        #expect(try row.decode(Bool.self, "b"))
        #expect(try row.decode(UUID.self, "u") == id)
        #expect(abs(try row.decode(Date.self, "t").timeIntervalSince(when)) < 0.000_01)
        struct Payload: Decodable, Equatable {
            let k: [Value]
            enum Value: Decodable, Equatable {
                case int(Int)
                case text(String)
                init(from decoder: Decoder) throws {
                    let container = try decoder.singleValueContainer()
                    if let number = try? container.decode(Int.self) {
                        self = .int(number)
                    } else {
                        self = .text(try container.decode(String.self))
                    }
                }
            }
        }
        #expect(try row.decodeJSON(Payload.self, "j") == Payload(k: [.int(1), .text("two")]))
        #expect(try row.decode([Int].self, "a") == [1, 2, 3])
        #expect(try row.decode([String].self, "ta") == ["a,b", "c\"d", "NULL"])
        #expect(try row.decode(PostgresBytes.self, "by") == PostgresBytes([0, 255, 39]))
    }

    @Test("a failed statement inside a savepoint rolls back only that savepoint")
    func savepointRollback() throws {
        try db.execute("CREATE TABLE \(table) (id int PRIMARY KEY, note text)")
        try db.transaction { tx in
            try tx.query("INSERT INTO \(table) VALUES (1, 'kept')")
            #expect(throws: PostgresError.self) {
                try tx.savepoint { sp in
                    try sp.query("INSERT INTO \(table) VALUES (2, 'rolled back')")
                    try sp.query("INSERT INTO \(table) VALUES (1, 'duplicate')")
                }
            }
            try tx.query("INSERT INTO \(table) VALUES (3, 'after')")
        }
        let ids = try db.query("SELECT id FROM \(table) ORDER BY id").rows.map { try $0.decode(Int.self, "id") }
        #expect(ids == [1, 3])
    }

    @Test("a unique violation is recognisable by SQLSTATE and constraint")
    func uniqueViolation() throws {
        try db.execute("CREATE TABLE \(table) (email text CONSTRAINT \(table)_email UNIQUE)")
        try db.query("INSERT INTO \(table) VALUES ($1)", ["a@example.com"])
        do {
            try db.query("INSERT INTO \(table) VALUES ($1)", ["a@example.com"])
            Issue.record("duplicate accepted")
        } catch let error as PostgresError {
            #expect(error.isUniqueViolation)
            #expect(error.sqlState == "23505")
            #expect(error.constraint == "\(table)_email")
            #expect(!error.isTransient)
        }
        // The connection stays usable.
        #expect(try db.query("SELECT count(*) AS n FROM \(table)").first?.decode(Int.self, "n") == 1)
    }

    @Test("a pipeline sends many statements in one round trip; one failure rolls the batch back")
    func pipeline() throws {
        try db.execute("CREATE TABLE \(table) (id int PRIMARY KEY)")
        let inserts = (1...200).map { PostgresStatement("INSERT INTO \(table) VALUES ($1)", [$0]) }
        let outcomes = try db.pipeline(inserts)
        #expect(outcomes.count == 200)
        #expect(outcomes.allSatisfy { (try? $0.get()) != nil })
        #expect(try db.query("SELECT count(*) AS n FROM \(table)").first?.decode(Int.self, "n") == 200)

        let bad = [
            PostgresStatement("INSERT INTO \(table) VALUES ($1)", [1000]),
            PostgresStatement("INSERT INTO \(table) VALUES ($1)", [1]),
            PostgresStatement("INSERT INTO \(table) VALUES ($1)", [1001]),
        ]
        let results = try db.pipeline(bad)
        #expect((try? results[0].get()) != nil)
        if case .failure(let error) = results[1] {
            #expect(error.isUniqueViolation)
        } else {
            Issue.record("expected failure")
        }
        #expect((try? results[2].get()) == nil)
        #expect(try db.query("SELECT count(*) AS n FROM \(table)").first?.decode(Int.self, "n") == 200)
    }

    @Test("a connection whose session the server ended reconnects on the next call")
    func reconnectAfterTermination() throws {
        let admin = try PostgresConnection(url: TestEnvironment.adminDatabaseURL)
        let pid = db.backendPID
        try admin.query("SELECT pg_terminate_backend($1)", [Int(pid)])
        do {
            try db.query("SELECT 1")
        } catch let error as PostgresError {
            #expect(error.isConnectionError)
        }
        #expect(try db.query("SELECT 2 AS n").first?.decode(Int.self, "n") == 2)
        #expect(db.backendPID != pid)
    }

    @Test("repeated pipelined statements are prepared once, survive a failed prepare and a reconnect")
    func preparedPipelines() throws {
        let scratch = "prepared_\(Int.random(in: 0..<1_000_000_000))"
        try db.execute("CREATE TEMP TABLE \(scratch) (n int PRIMARY KEY)")
        let insert = "INSERT INTO \(scratch) (n) VALUES ($1)"
        func prepared() throws -> Int {
            try db.query("SELECT count(*) AS n FROM pg_prepared_statements").first?.decode(Int.self, "n") ?? -1
        }
        for round in 0..<3 {
            let outcomes = try db.pipeline((0..<10).map { PostgresStatement(insert, [round * 10 + $0]) })
            #expect(outcomes.allSatisfy { if case .success = $0 { true } else { false } })
        }
        #expect(try prepared() == 1)
        // A statement that cannot be prepared fails in place and is not remembered as prepared.
        let broken = "INSERT INTO no_such_table_\(scratch) VALUES ($1)"
        for _ in 0..<2 {
            let outcomes = try db.pipeline([PostgresStatement(broken, [1]), PostgresStatement(broken, [2])])
            #expect(outcomes.allSatisfy { if case .failure = $0 { true } else { false } })
        }
        #expect(try db.pipeline([PostgresStatement(insert, [100])]).count == 1)
        // A table changed under a prepared SELECT *: at most one failure, then it is prepared again.
        let select = "SELECT * FROM \(scratch) WHERE n = $1"
        for _ in 0..<2 { _ = try db.pipeline([PostgresStatement(select, [1])]) }
        try db.execute("ALTER TABLE \(scratch) ADD COLUMN note text")
        _ = try db.pipeline([PostgresStatement(select, [1])])
        let again = try db.pipeline([PostgresStatement(select, [1])])
        #expect(try again.first?.get().columns == ["n", "note"])
        // After the server ends the session, the statements are prepared again on the new one.
        let admin = try PostgresConnection(url: TestEnvironment.adminDatabaseURL)
        try admin.query("SELECT pg_terminate_backend($1)", [Int(db.backendPID)])
        _ = try? db.query("SELECT 1")
        try db.execute("CREATE TEMP TABLE \(scratch) (n int PRIMARY KEY)")
        for round in 0..<2 {
            let outcomes = try db.pipeline((0..<5).map { PostgresStatement(insert, [round * 10 + $0]) })
            #expect(outcomes.allSatisfy { if case .success = $0 { true } else { false } })
        }
        #expect(try db.query("SELECT count(*) AS n FROM \(scratch)").first?.decode(Int.self, "n") == 10)
    }

    @Test("the async client runs statements off the caller's thread")
    func asyncClient() async throws {
        let client = try PostgresClient(url: TestEnvironment.databaseURL)
        let result = try await client.query("SELECT $1::int + 1 AS n", [41])
        #expect(try result.first?.decode(Int.self, "n") == 42)
        // More blocking statements in flight than the cooperative pool has threads, and this
        // task still runs and sees every one of them waiting in Postgres at once: none of
        // them holds a pool thread while it waits. They wait for an advisory lock the test
        // holds (not a timed sleep), so a loaded machine cannot make them finish early.
        let width = ProcessInfo.processInfo.activeProcessorCount + 2
        let marker = TestEnvironment.uniqueName("blocked")
        let holder = try PostgresConnection(url: TestEnvironment.databaseURL)
        try holder.query("SELECT pg_advisory_lock(hashtext($1))", [marker])
        let sleepers = try (0..<width).map { _ in try PostgresClient(url: TestEnvironment.databaseURL) }
        let blocked = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sleeper in sleepers {
                    group.addTask {
                        try await sleeper.query("SELECT pg_advisory_xact_lock(hashtext($1)) AS \(marker)", [marker])
                    }
                }
                try await group.waitForAll()
            }
        }
        try await eventually("\(width) statements blocked at once", timeout: 30) {
            let rows = try await client.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                ["%AS \(marker)%"])
            return try rows.first?.decode(Int.self, "n") == width
        }
        try holder.query("SELECT pg_advisory_unlock(hashtext($1))", [marker])
        try await blocked.value
    }
}

@Suite("Postgres failures")
struct PostgresFailureTests {
    @Test("a malformed URL, an unreachable server, a wrong password: one clear line each")
    func badInput() throws {
        let port = try freePort()
        let cases: [(String, PostgresError.Kind, String)] = [
            ("postgres://u:p@localhost:5432/db?bogus=1", .invalidURL, "bogus"),
            ("postgres://u:p@127.0.0.1:\(port)/db", .connectionFailed, "127.0.0.1:\(port)"),
            (
                TestEnvironment.databaseURL.replacingOccurrences(of: "choreo:choreo@", with: "choreo:wrong@"),
                .connectionFailed, "password authentication failed"
            ),
        ]
        for (url, kind, fragment) in cases {
            do {
                _ = try PostgresConnection(url: url, connectTimeout: 2)
                Issue.record("\(url) connected")
            } catch let error as PostgresError {
                #expect(error.kind == kind, "\(error)")
                #expect("\(error)".contains(fragment), "\(error)")
                #expect(!"\(error)".contains("\n"), "\(error)")
                #expect(!"\(error)".contains(":wrong@"))
            }
        }
    }
}
