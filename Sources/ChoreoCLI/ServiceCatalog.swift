// ServiceCatalog: the service implementations linked into this binary, by code name.

import Choreo
import Hello
import Probe
import Shop

/// The services this binary can run. A topology service runs the code named by its `code`
/// key (default: its name).
enum ServiceCatalog {
    static func service(for definition: ServiceDefinition) -> Service? {
        switch definition.code {
        case "probe": return Probe.service(name: definition.name)
        case "hello": return Hello.service(name: definition.name)
        default: return ShopServices.service(for: definition)
        }
    }

    static func require(_ definition: ServiceDefinition) throws -> Service {
        guard let service = service(for: definition) else {
            throw CommandError(
                "no implementation named '\(definition.code)' for service '\(definition.name)' in this binary")
        }
        return service
    }
}

/// A one-line error for the operator.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
