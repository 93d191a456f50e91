// `choreo bench json`: the package's one JSON codec (ChoreoJSON) against Foundation's
// JSONSerialization, JSONDecoder and JSONEncoder on what the hot paths do with JSON: check an
// envelope's payload, parse and canonicalize a submit body, encode and decode a string array.

import ArgumentParser
import ChoreoJSON
import Foundation

struct JSONBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json", abstract: "ChoreoJSON vs Foundation on an envelope payload and a submit body.")

    @Option(help: "Runs per measurement; the median is reported.") var runs = 3
    @Option(help: "Operations per run.") var count = 200_000

    /// A StockReserved payload as it travels in an envelope.
    static let payload =
        #"{"lines":[{"productId":"5b0c3f7e-6a43-4f55-9d2b-0c6f1c1f0a11","quantity":2,"unitPriceCents":150},"#
        + #"{"productId":"9e1d2c3b-4a5f-4e6d-8c7b-6a5f4e3d2c1b","quantity":1,"unitPriceCents":275}],"#
        + #""orderId":"d2f1e0c9-b8a7-4695-8473-62514f3e2d1c","totalCents":575,"#
        + #""userId":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}"#
    /// A PlaceOrder body as a client sends it.
    static let body =
        #"{"userId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "items": [{"productId": "5b0c3f7e-6a43-4f55-9d2b-0c6f1c1f0a11", "quantity": 2}, "#
        + #"{"productId": "9e1d2c3b-4a5f-4e6d-8c7b-6a5f4e3d2c1b", "quantity": 1}], "checkout": true}"#
    /// An outbox row's fields (a string array).
    static let fields = [
        "id", "6f1e2d3c-4b5a-4968-8776-655443322110", "type", "StockReserved", "data", payload, "correlation",
        "d2f1e0c9-b8a7-4695-8473-62514f3e2d1c", "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ]

    struct Item: Codable {
        var productId: String
        var quantity: Int
    }

    struct PlaceOrder: Codable {
        var userId: String
        var items: [Item]
        var checkout: Bool
    }

    func rate(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        for _ in 0..<count { try body() }
        return Double(count) / elapsed(since: start)
    }

    func pair(_ name: String, ours: () throws -> Void, foundation: () throws -> Void) rethrows {
        let mine = try measure("\(name): ChoreoJSON", runs: runs) { try rate(ours) }
        let theirs = try measure("\(name): Foundation", runs: runs) { try rate(foundation) }
        print(String(format: "    ratio ChoreoJSON / Foundation: %.1fx", mine / theirs))
    }

    func run() throws {
        let payloadData = Data(Self.payload.utf8)
        let bodyData = Data(Self.body.utf8)
        var sink = 0
        try pair(
            "envelope payload: validate (\(Self.payload.utf8.count) B)",
            ours: { sink &+= JSONText.isValid(Self.payload) ? 1 : 0 },
            foundation: { sink &+= (try JSONSerialization.jsonObject(with: payloadData)) is [String: Any] ? 1 : 0 })
        try pair(
            "submit body: parse + canonical text (\(Self.body.utf8.count) B)",
            ours: { sink &+= try bodyData.withUnsafeBytes { try JSONValue.parse(bytes: $0) }.text.utf8.count },
            foundation: {
                let object = try JSONSerialization.jsonObject(with: bodyData)
                sink &+= try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).count
            })
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try pair(
            "submit body: parse + canonical text vs Codable round trip",
            ours: { sink &+= try bodyData.withUnsafeBytes { try JSONValue.parse(bytes: $0) }.text.utf8.count },
            foundation: { sink &+= try encoder.encode(try decoder.decode(PlaceOrder.self, from: bodyData)).count })
        let row = JSONText.array(Self.fields)
        let rowData = Data(row.utf8)
        try pair(
            "outbox fields: encode a string array (\(Self.fields.count) strings)",
            ours: { sink &+= JSONText.array(Self.fields).utf8.count },
            foundation: { sink &+= try encoder.encode(Self.fields).count })
        try pair(
            "outbox fields: decode a string array (\(row.utf8.count) B)",
            ours: { sink &+= JSONText.decodeArray(row)?.count ?? 0 },
            foundation: { sink &+= try decoder.decode([String].self, from: rowData).count })
        if sink == 42 { print("") }  // keeps the work from being optimized away
    }
}
