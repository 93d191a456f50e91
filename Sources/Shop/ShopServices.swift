// ShopServices: the reference shop's service implementations by code name, for the CLI's
// catalog and for tests (the contract check, the handler harness).

import Choreo
import Inventory
import Orders
import Payments
import Users

/// The reference shop's services.
public enum ShopServices {
    /// The code names this module implements.
    public static let codes = ["users", "inventory", "payments", "orders"]

    /// The implementation a topology service names with its `code` (default: its name),
    /// registered under the service's name, configured by its `settings`; `nil` for code this
    /// module does not hold. Throws for settings the code cannot use.
    public static func service(for definition: ServiceDefinition) throws -> Service? {
        switch definition.code {
        case "users": return Users.service(name: definition.name)
        case "inventory": return Inventory.service(name: definition.name)
        case "payments": return Payments.service(name: definition.name)
        case "orders": return Orders.service(name: definition.name, settings: try Orders.Settings(definition.settings))
        default: return nil
        }
    }
}
