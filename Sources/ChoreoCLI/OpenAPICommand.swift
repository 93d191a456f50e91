// `choreo openapi`: print the gateway's OpenAPI 3.1 document for the topology.

import ArgumentParser
import Gateway

struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the gateway's OpenAPI 3.1 document (YAML).")

    @OptionGroup var options: TopologyOptions

    func run() throws {
        print(OpenAPIDocument.yaml(for: try options.load()), terminator: "")
    }
}
