// ContractTests: the shop's message contracts agree across routes, services and streams, and
// the check reports each kind of broken contract (a test of the test).

import Choreo
import ChoreoTesting
import Shop
import ShopContracts
import Testing

@Suite("Message contracts")
struct ContractTests {
    static func shopTopology() throws -> Topology {
        try Topology.load(path: TestEnvironment.repositoryRoot + "/streams.yml", environment: [:])
    }

    @Test("every handler of the shop is fed, and every payload decodes as its consumer's contract")
    func theShopsContractsAgree() throws {
        let topology = try Self.shopTopology()
        let problems = ContractCheck.problems(topology, code: { (try? ShopServices.service(for: $0)) ?? nil })
        #expect(problems.isEmpty, "\(problems.map(\.description).joined(separator: "\n"))")
        for definition in topology.services {
            let service = try #require(try ShopServices.service(for: definition))
            let untyped = service.handledContracts.values.filter { $0.kind == .untyped }.map(\.type)
            #expect(untyped.isEmpty, "\(definition.name) registers handlers without a contract: \(untyped)")
            #expect(!service.handledContracts.isEmpty)
        }
    }

    /// A consumer's private view of `StockReserved` that disagrees with inventory's: a field
    /// renamed by the producer, and one read as a string though it is an integer.
    struct SkewedStockReserved: EventContract {
        static var messageType: String { "StockReserved" }
        var orderId: String
        var total: Int
        var userId: Int
    }

    /// A consumer that requires a field the producer sends as optional.
    struct StrictOrderPlaced: EventContract {
        static var messageType: String { "OrderPlaced" }
        var orderId: String
        var totalCents: Int
    }

    static func auditor() -> Service {
        var service = Service(name: "auditor")
        service.on(SkewedStockReserved.self) { _, _ in }
        service.on(StrictOrderPlaced.self) { _, _ in }
        service.on(PaymentSucceeded.self) { _, _ in }
        service.sends(GetAccount.self, to: "inventory")
        return service
    }

    @Test(
        "the check reports a renamed field, a type change, an optional read as required, an unfed subscription, a send nobody handles and a route missing a field"
    )
    func brokenContractsAreReported() throws {
        var topology = try Self.shopTopology()
        topology.services.append(
            ServiceDefinition(name: "auditor", subscribes: ["{inventory}.events", "{orders}.events"]))
        let createUser = try #require(topology.routes.firstIndex { $0.type == "CreateUser" })
        topology.routes[createUser].body["name"] = nil
        let problems = ContractCheck.problems(topology) { definition in
            definition.name == "auditor" ? Self.auditor() : (try? ShopServices.service(for: definition)) ?? nil
        }.map(\.description)
        let expected = [
            "auditor · StockReserved: from {inventory}.events: 'total' is required but never sent",
            "auditor · StockReserved: from {inventory}.events: 'userId' is read as integer but sent as string",
            "auditor · OrderPlaced: from {orders}.events: 'totalCents' is required but the producer may leave it out",
            "auditor · PaymentSucceeded: handled, but no route, no service sending to auditor and no stream it consumes ({inventory}.events, {orders}.events) carries it; it is published on {payments}.events",
            "auditor · GetAccount: sent to inventory, which has no handler for it",
            "users · CreateUser: from POST /v1/users: 'name' is required but never sent",
        ]
        for line in expected {
            #expect(problems.contains(line), "missing: \(line)\nreported:\n\(problems.joined(separator: "\n"))")
        }
        #expect(problems.count == expected.count, "\(problems.joined(separator: "\n"))")
    }

    @Test("a payload shape is read off the contract type: fields, optionals, arrays, nested objects")
    func shapesComeFromTheTypes() {
        #expect(
            MessageShape.of(PlaceOrder.self)
                == .object([
                    "userId": .init(.string),
                    "items": .init(
                        .array(.object(["productId": .init(.string), "quantity": .init(.integer)])), required: false),
                    "checkout": .init(.boolean, required: false),
                ]))
        #expect(ContractDescription(StockReserved.self).kind == .event)
        #expect(ContractDescription(CreateUser.self).kind == .command)
        #expect(ContractDescription(StockReserved.self).type == "StockReserved")
    }
}
