// `choreo scheduled list|cancel`: the operator's view of a service's delayed messages (the
// `scheduled` table in its schema, read with the topology's Postgres URL for that service).

import ArgumentParser
import Choreo
import Foundation
import Postgres

struct ScheduledCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduled", abstract: "List and cancel a service's delayed (scheduled) messages.",
        discussion: "Exit status: 0 ok, 1 nothing to cancel, 2 usage or connection error.",
        subcommands: [List.self, Cancel.self])

    /// The service's schema and a connection to it.
    static func connect(_ service: String, _ options: TopologyOptions) throws -> (PostgresConnection, String) {
        let context = try OperatorContext(options)
        let definition = try context.service(service)
        guard let schema = definition.schema else {
            throw Exit.usage("service '\(service)' has no schema, so no delayed messages")
        }
        do {
            return (try PostgresConnection(url: context.topology.postgresURL(for: definition)), schema)
        } catch {
            throw Exit.usage("cannot reach Postgres for '\(service)': \(error)")
        }
    }
}

extension ScheduledCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A service's scheduled messages, soonest first.")

        @Argument(help: "The service.") var service: String
        @Option(help: "At most this many messages.") var limit = 50
        @Flag(help: "JSON output.") var json = false
        @OptionGroup var options: TopologyOptions

        func run() throws {
            let (postgres, schema) = try ScheduledCommand.connect(service, options)
            let entries = try Scheduler.list(postgres: postgres, schema: schema, limit: limit)
            let summary = try Scheduler.summary(postgres: postgres, schema: schema)
            if json { return print(try prettyJSON(entries)) }
            let now = Envelope.nowMilliseconds()
            print(
                table(
                    ["ID", "TYPE", "TO", "DUE", "IN", "CORRELATION"],
                    entries.map {
                        [
                            $0.id, $0.type, $0.stream, isoTime($0.dueAt),
                            $0.dueAt <= now ? "due" : "\(($0.dueAt - now + 999) / 1000)s", $0.correlation,
                        ]
                    }))
            print("\(entries.count) shown of \(summary.count) scheduled for \(service)")
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel scheduled messages by id (they are never published).")

        @Argument(help: "The service.") var service: String
        @Argument(help: "Ids of the scheduled messages (from `scheduled list`).") var ids: [String]
        @OptionGroup var options: TopologyOptions

        func run() throws {
            let (postgres, schema) = try ScheduledCommand.connect(service, options)
            var missing: [String] = []
            for id in ids {
                if try Scheduler.cancel(postgres: postgres, schema: schema, id: id) {
                    print("cancelled \(id)")
                } else {
                    missing.append(id)
                }
            }
            guard missing.isEmpty else {
                FileHandle.standardError.write(
                    Data(
                        "choreo: not scheduled (already published, or unknown): \(missing.joined(separator: ", "))\n"
                            .utf8))
                throw Exit.problems
            }
        }
    }
}
