import ChoreoTesting
import Foundation
import Postgres
import Testing

@Suite("Migrations")
struct MigratorTests {
    let schema = TestEnvironment.uniqueName("m")

    var migrations: [Migration] {
        [
            Migration(version: 2, name: "seed", sql: "INSERT INTO counter (n) VALUES (1);"),
            Migration(version: 1, name: "create", sql: "CREATE TABLE counter (n int NOT NULL);"),
        ]
    }

    @Test("migrations apply once, in order, even when several processes start together")
    func concurrentStart() async throws {
        let migrator = try Migrator(schema: schema, migrations: migrations)
        let url = TestEnvironment.databaseURL
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let connection = try PostgresConnection(url: url)
                    return try migrator.migrate(on: connection)
                }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(applied.filter { !$0.isEmpty } == [[1, 2]])
        let db = try PostgresConnection(url: url)
        #expect(try db.query("SELECT count(*) AS n FROM \(schema).counter").first?.decode(Int.self, "n") == 1)
        #expect(try migrator.appliedVersions(on: db) == [1, 2])
        #expect(try migrator.migrate(on: db).isEmpty)
    }

    @Test("a failing migration records nothing and leaves no partial change")
    func failingMigration() throws {
        let db = try PostgresConnection(url: TestEnvironment.databaseURL)
        let broken =
            migrations + [
                Migration(
                    version: 3, name: "broken", sql: "CREATE TABLE half (x int); SELECT no_such_column FROM counter;")
            ]
        let migrator = try Migrator(schema: schema, migrations: broken)
        #expect(throws: PostgresError.self) { try migrator.migrate(on: db) }
        #expect(try migrator.appliedVersions(on: db) == [1, 2])
        #expect(
            try db.query("SELECT to_regclass($1) IS NULL AS absent", ["\(schema).half"]).first?.decode(
                Bool.self, "absent") == true)
    }

    @Test("duplicate versions and bad schema names are rejected up front")
    func validation() {
        #expect(throws: PostgresError.self) {
            try Migrator(
                schema: schema,
                migrations: [Migration(version: 1, name: "a", sql: ""), Migration(version: 1, name: "b", sql: "")])
        }
        #expect(throws: PostgresError.self) { try Migrator(schema: "bad; DROP", migrations: []) }
    }

    @Test("migration files load from a folder by their number")
    func loadFromDirectory() throws {
        let directory = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("mig")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "CREATE TABLE b (x int);".write(toFile: directory + "/010_second.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE a (x int);".write(toFile: directory + "/002_first.sql", atomically: true, encoding: .utf8)
        let loaded = try Migration.load(directory: directory)
        #expect(loaded.map(\.version) == [2, 10])
        #expect(loaded.map(\.name) == ["first", "second"])
    }
}
