// `choreo load`: a load run of the reference system through its gateway (fixed offered rate,
// random outcomes), optionally followed by the consistency checker. Also the saga benchmark.

import ArgumentParser
import Choreo
import Foundation
import Postgres
import Shop

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Offer orders to the reference system at a fixed rate and report outcomes and latency.",
        discussion:
            "Exit status: 0 ok, 1 an order was lost or undecided or the checker failed, 2 usage or connection error.")

    @Option(help: "The gateway's base URL.") var gateway = "http://127.0.0.1:8080"
    @Option(help: "API key (default: the first of CHOREO_API_KEYS).") var apiKey: String?
    @Option(help: "Orders to offer.") var orders = 2000
    @Option(help: "Orders offered per second.") var rate = 200.0
    @Option(help: "Users to create.") var users = 40
    @Option(help: "Products to create.") var products = 20
    @Option(help: "Seconds a refused or failed submit is retried (same Idempotency-Key).") var submitRetry = 0.0
    @Option(help: "Seconds to wait for each order's verdict.") var verdictTimeout = 60.0
    @Flag(help: "Run the consistency checker after the run (needs the topology's Postgres URL).") var check = false
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var options: TopologyOptions

    func run() async throws {
        var plan = LoadRun.Plan()
        plan.orders = orders
        plan.rate = rate
        plan.users = users
        plan.products = products
        plan.submitRetry = submitRetry
        plan.verdictTimeout = verdictTimeout
        let key =
            apiKey
            ?? ProcessInfo.processInfo.environment["CHOREO_API_KEYS"]?.split(separator: ",").first.flatMap {
                $0.split(separator: ":").dropFirst().first.map(String.init)
            }
        let client = ShopClient(base: gateway, apiKey: key)
        let report: LoadRun.Report
        do {
            let run = LoadRun(client: client, plan: plan) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            // On a terminal, a progress line rewritten every second; otherwise only the summary.
            let live = isatty(STDOUT_FILENO) == 1 && !json
            let ticker = Task {
                while live, !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                    FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + run.progress.snapshot().line).utf8))
                }
            }
            defer { ticker.cancel() }
            report = try await run.run()
            ticker.cancel()
            if live { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        } catch {
            FileHandle.standardError.write(Data("choreo load: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var ok = report.errors == 0 && report.undecided == 0 && report.dead == 0
        var checkReport: ConsistencyChecker.Report?
        if check {
            let topology = try options.load()
            let checker = try ConsistencyChecker(topology: topology)
            let connection = try PostgresConnection(url: topology.postgresURL)
            var current = try checker.check(connection)
            let deadline = Date().addingTimeInterval(30)
            while !current.ok, Date() < deadline {
                try await Task.sleep(nanoseconds: 500_000_000)
                current = try checker.check(connection)
            }
            checkReport = current
            ok = ok && current.ok
        }
        if json {
            struct Output: Encodable {
                let load: LoadRun.Report
                let check: ConsistencyChecker.Report?
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(Output(load: report, check: checkReport)), as: UTF8.self))
        } else {
            print(
                "offered \(report.offered) at \(rate)/s in \(String(format: "%.1f", report.seconds)) s: "
                    + "\(report.confirmed) confirmed, cancelled \(report.cancelled), failed \(report.failed), "
                    + "\(report.undecided) undecided, \(report.dead) dead, \(report.notAccepted) not accepted, "
                    + "\(report.errors) errors")
            let latency = ["p50", "p90", "p99", "p999", "max"].map {
                "\($0) \(String(format: "%.1f", report.latencyMs[$0] ?? 0))"
            }
            print(
                "throughput \(String(format: "%.0f", report.ordersPerSecond)) orders/s; submit-to-verdict ms: "
                    + latency.joined(separator: ", "))
            for error in report.firstErrors { print("error: \(error)") }
            for check in checkReport?.checks ?? [] {
                print("\(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            }
        }
        if !ok { throw ExitCode(1) }
    }
}
