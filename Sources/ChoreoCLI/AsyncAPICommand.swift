// `choreo asyncapi`: print the AsyncAPI 3.0 document of the topology's streams.

import ArgumentParser
import Gateway

struct AsyncAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "asyncapi",
        abstract: "Print the AsyncAPI 3.0 document of the streams (channels, operations, message schemas; YAML).")

    @OptionGroup var options: TopologyOptions

    func run() throws {
        print(AsyncAPIDocument.yaml(for: try options.load(), code: ServiceCatalog.service(for:)), terminator: "")
    }
}
