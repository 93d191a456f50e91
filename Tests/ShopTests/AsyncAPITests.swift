// AsyncAPITests: the AsyncAPI document of the shop's streams names every type each service
// handles and publishes, with a schema, and every reference in it resolves.

import Choreo
import ChoreoTesting
import Gateway
import Shop
import Testing
import Yams

@Suite("AsyncAPI document")
struct AsyncAPITests {
    @Test(
        "every handled and published type is a message with its payload schema, reached by an operation; every $ref resolves"
    )
    func documentCoversTheContracts() throws {
        let topology = try ContractTests.shopTopology()
        let text = AsyncAPIDocument.yaml(for: topology, code: { (try? ShopServices.service(for: $0)) ?? nil })
        #expect(text.hasPrefix("asyncapi: 3.0.0\n"))
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let channels = try #require(document["channels"] as? [String: [String: Any]])
        let operations = try #require(document["operations"] as? [String: [String: Any]])
        let messages = try #require((document["components"] as? [String: Any])?["messages"] as? [String: Any])
        var operated: Set<String> = []
        for (id, operation) in operations {
            let channelRef = try #require((operation["channel"] as? [String: Any])?["$ref"] as? String, "\(id)")
            let channelID = String(channelRef.dropFirst("#/channels/".count))
            let channel = try #require(channels[channelID], "\(id): \(channelRef)")
            let channelMessages = channel["messages"] as? [String: Any] ?? [:]
            for reference in operation["messages"] as? [[String: String]] ?? [] {
                let ref = try #require(reference["$ref"])
                let name = try #require(ref.split(separator: "/").last.map(String.init))
                #expect(ref == "#/channels/\(channelID)/messages/\(name)", "\(id): \(ref)")
                #expect(channelMessages[name] != nil, "\(id): \(ref) is not a message of \(channelID)")
                operated.insert(name)
            }
        }
        for (id, channel) in channels {
            for (name, reference) in channel["messages"] as? [String: [String: String]] ?? [:] {
                #expect(reference["$ref"] == "#/components/messages/\(name)", "\(id)")
                #expect(messages[name] != nil, "\(id): no component message \(name)")
            }
        }
        for definition in topology.services {
            let service = try #require(try ShopServices.service(for: definition))
            for type in Array(service.handledContracts.keys) + Array(service.publishedContracts.keys) {
                let message = try #require(messages[type] as? [String: Any], "\(definition.name): \(type) missing")
                let payload = message["payload"] as? [String: Any]
                #expect(payload?["type"] as? String == "object", "\(type): \(String(describing: payload))")
                #expect(operated.contains(type), "\(definition.name): no operation sends or receives \(type)")
            }
        }
        let reserved = try #require(messages["StockReserved"] as? [String: Any])
        let payload = try #require(reserved["payload"] as? [String: Any])
        #expect((payload["required"] as? [String])?.sorted() == ["lines", "orderId", "totalCents", "userId"])
        let receive = try #require(operations["paymentsReceivesInventory-events"])
        #expect(receive["action"] as? String == "receive")
        #expect(receive["x-consumer-group"] as? String == "payments")
    }
}
