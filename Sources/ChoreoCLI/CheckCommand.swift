// `choreo check`: the reference system's consistency checker, for operators and the load run.

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Shop

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Check the reference system's invariants (money, stock, settled orders, nothing held for a cancelled order, no double effects).",
        discussion: "Exit status: 0 all hold, 1 an invariant fails, 2 usage or connection error.")

    @Option(help: "Seconds an order may stay pending before it counts as stuck (default: orders' saga_deadline + 10).")
    var sagaTimeout: Double?

    @Option(help: "Keep checking for up to this many seconds until every invariant holds (sagas in flight).")
    var wait: Double = 0

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var options: TopologyOptions

    func run() throws {
        let report: ConsistencyChecker.Report
        do {
            let topology = try options.load()
            let checker = try ConsistencyChecker(topology: topology, sagaTimeout: sagaTimeout)
            let connection = try PostgresConnection(url: topology.postgresURL)
            let deadline = Date().addingTimeInterval(wait)
            var current = try checker.check(connection)
            while !current.ok, Date() < deadline {
                Thread.sleep(forTimeInterval: 0.5)
                current = try checker.check(connection)
            }
            report = current
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("choreo check: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            let orders = report.orders.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            print("users \(report.users), products \(report.products), orders: \(orders.joined(separator: ", "))")
            for check in report.checks {
                print("\(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
