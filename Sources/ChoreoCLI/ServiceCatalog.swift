// ServiceCatalog: the service implementations linked into this binary, by code name.

import Choreo
import Hello
import Probe
import Shop

/// The services this binary can run. A topology service runs the code named by its `code`
/// key (default: its name).
enum ServiceCatalog {
    /// The implementation, configured by the service's settings (which may be invalid).
    static func implementation(for definition: ServiceDefinition) throws -> Service? {
        switch definition.code {
        case "probe": return Probe.service(name: definition.name)
        case "hello": return Hello.service(name: definition.name)
        default: return try ShopServices.service(for: definition)
        }
    }

    /// The implementation, for describing it (contracts, AsyncAPI); `nil` also when its
    /// settings are invalid (``require(_:)`` names the problem).
    static func service(for definition: ServiceDefinition) -> Service? {
        (try? implementation(for: definition)) ?? nil
    }

    static func require(_ definition: ServiceDefinition) throws -> Service {
        let found: Service?
        do { found = try implementation(for: definition) } catch {
            throw CommandError("service '\(definition.name)': \(error)")
        }
        guard let service = found else {
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
