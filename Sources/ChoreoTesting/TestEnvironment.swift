// TestEnvironment: the servers ops/test started for this run, and unique names for isolation.

import Foundation
import Postgres
import Redis

/// The Redis and Postgres servers that `ops/test` started for the test run, read from the
/// environment (`CHOREO_TEST_REDIS_URL`, `CHOREO_TEST_DATABASE_URL`,
/// `CHOREO_TEST_ADMIN_DATABASE_URL`, `CHOREO_TEST_WORKDIR`).
public enum TestEnvironment {
    /// URL of the throw-away Redis server.
    public static var redisURL: String { value("CHOREO_TEST_REDIS_URL") }
    /// URL of the throw-away Postgres database, as the application role `choreo`.
    public static var databaseURL: String { value("CHOREO_TEST_DATABASE_URL") }
    /// URL of the same database as the superuser (for role and privilege tests).
    public static var adminDatabaseURL: String { value("CHOREO_TEST_ADMIN_DATABASE_URL") }
    /// The `choreo` executable built for this run.
    public static var choreoBinary: String { value("CHOREO_BINARY") }
    /// A scratch folder removed after the run.
    public static var workDirectory: String {
        ProcessInfo.processInfo.environment["CHOREO_TEST_WORKDIR"] ?? NSTemporaryDirectory()
    }

    /// The repository's root folder (this file is `Sources/ChoreoTesting/` in it).
    public static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// A name no other test uses: `prefix_` plus random lowercase letters and digits, valid
    /// as a Redis key prefix and a Postgres identifier.
    public static func uniqueName(_ prefix: String = "t") -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return prefix + "_" + String((0..<10).map { _ in alphabet.randomElement()! })
    }

    /// Creates a database of the test's own (owned by the application role), for tests that
    /// change database-wide settings; returns its name and its URL as the application role.
    public static func scratchDatabase() throws -> (name: String, url: String) {
        let admin = try PostgresConnection(url: adminDatabaseURL)
        let database = uniqueName("db")
        try admin.execute("CREATE DATABASE \(database) OWNER choreo")
        return (database, String(databaseURL.dropLast("choreo".count)) + database)
    }

    /// The test Redis server's database `number` (emptied first), for a system of a test's
    /// own: its streams and groups apart from the shared shop's. Each suite takes its own
    /// number (the shared shop uses 0).
    public static func redisDatabase(_ number: Int) throws -> String {
        var configuration = try RedisConfiguration(url: redisURL)
        configuration.database = number
        let redis = try RedisConnection(configuration: configuration)
        try redis.command(["FLUSHDB"])
        return configuration.description
    }

    /// The value of the environment variable `name` that ops/test sets; stops the test run
    /// with a message naming it when it is missing.
    public static func variable(_ name: String) -> String { value(name) }

    private static func value(_ name: String) -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            fatalError("\(name) is not set: run the tests with ops/test, which starts Redis and Postgres")
        }
        return value
    }
}
