// `choreo contracts`: check that every handler of the topology is fed, and that what feeds it
// decodes as its contract (routes, commands sent, events on the streams it consumes).

import ArgumentParser
import Choreo

struct ContractsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contracts",
        abstract: "Check the message contracts between routes, services and the streams they consume.",
        discussion: """
            Exits 1 and lists the problems when a service handles a type nothing it consumes \
            carries, when a route or a send has no handler, or when a producer's payload \
            would not decode as the consumer's contract.
            """)

    @OptionGroup var options: TopologyOptions

    func run() throws {
        let topology = try options.load()
        let problems = ContractCheck.problems(topology, code: ServiceCatalog.service(for:))
        let unlinked = topology.services.filter { ServiceCatalog.service(for: $0) == nil }.map(\.name)
        if !unlinked.isEmpty { print("not checked (no code in this binary): \(unlinked.joined(separator: ", "))") }
        guard !problems.isEmpty else {
            print(
                "contracts agree: \(topology.services.count - unlinked.count) services, \(topology.routes.count) routes"
            )
            return
        }
        for problem in problems { print(problem) }
        throw ExitCode(1)
    }
}
