// `choreo migrate [service...]`: apply every service's migrations (runtime tables included),
// provision each service's own login role (named by `DATABASE_URL_{NAME}`), and move Redis keys
// of the layout before hash tags to the current one.

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Redis

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply the migrations of every service (or the ones named).")

    @Argument(help: "Services to migrate (default: all with a schema).")
    var services: [String] = []

    @Flag(help: "Leave Redis alone (by default the keys of the old, untagged layout are moved).")
    var skipRedis = false

    @OptionGroup var options: TopologyOptions

    func run() throws {
        let topology = try options.load()
        let selected =
            services.isEmpty
            ? topology.services
            : try services.map { name in
                guard let service = topology.service(name) else { throw ValidationError("unknown service '\(name)'") }
                return service
            }
        let connection = try PostgresConnection(url: topology.postgresURL)
        for definition in selected {
            guard let schema = definition.schema else { continue }
            let code = try ServiceCatalog.require(definition)
            let applied = try RuntimeSchema.migrate(schema: schema, service: code, on: connection)
            print("\(definition.name): schema \(schema) " + (applied.isEmpty ? "up to date" : "applied \(applied)"))
            if let url = definition.postgresURL {
                let role = try ServiceRole(url: url)
                try role.provision(schema: schema, on: connection)
                print("\(definition.name): role \(role.name) may use schema \(schema) only")
            }
        }
        if !skipRedis {
            let redis = try RedisConnection(url: topology.redisURL)
            let moved = try RedisKeyLayout.migrate(topology, redis: redis)
            print("redis: key layout " + (moved.isEmpty ? "up to date" : "moved \(moved.joined(separator: ", "))"))
        }
    }
}
