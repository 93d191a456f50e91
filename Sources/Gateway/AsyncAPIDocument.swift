// AsyncAPIDocument: the AsyncAPI 3.0 description of the streams, which are the system's real
// API between services: a channel per stream (commands, events, dead letters, results), the
// operations (who sends, who receives, with which consumer group), each message type with its
// payload schema (read off its contract) and the envelope fields as headers. Written by Yams.

import Choreo
import Hummingbird
import NIOCore
import Yams

/// Builds `/asyncapi.yaml` from the topology and the services' registered handlers.
public enum AsyncAPIDocument {
    typealias Map = [String: Any]

    /// The document as YAML. `code` gives each topology service's implementation (its
    /// handlers and declared contracts); a service without one is described by its streams only.
    public static func yaml(for topology: Topology, code: (ServiceDefinition) -> Service?) -> String {
        var channels: Map = [:]
        var operations: Map = [:]
        var messages: Map = [
            "DeadLetter": deadLetterMessage(), "CommandResult": resultMessage(),
        ]
        let linked = topology.services.map { ($0, code($0)) }
        for (definition, service) in linked {
            let handled = service?.handledContracts ?? [:]
            let published = service?.publishedContracts ?? [:]
            for contract in Array(handled.values) + Array(published.values) {
                messages[contract.type] = message(contract)
            }
            let commands = handled.values.filter { $0.kind != .event }.map(\.type).sorted()
            let events = published.keys.sorted()
            channels[channelID(definition.commandStream)] = channel(
                definition.commandStream, commands,
                "Commands to \(definition.name), read by its consumer group."
                    + (definition.commandPartitioning.map(Self.partitionNote) ?? ""),
                partitions: definition.commandPartitioning)
            channels[channelID(definition.eventStream)] = channel(
                definition.eventStream, events,
                "Facts \(definition.name) publishes." + (definition.eventPartitioning.map(Self.partitionNote) ?? ""),
                partitions: definition.eventPartitioning)
            channels[channelID(definition.deadStream)] = channel(
                definition.deadStream, ["DeadLetter"], "Messages \(definition.name) could not handle, with the reason.")
            let group = definition.name
            operations["\(group)ReceivesCommands"] = operation(
                .receive, definition.commandStream, commands, group: group,
                summary: "\(group) handles its commands (consumer group \(group)).")
            operations["\(group)PublishesEvents"] = operation(
                .send, definition.eventStream, events, summary: "\(group) publishes its events.")
            operations["\(group)DeadLetters"] = operation(
                .send, definition.deadStream, ["DeadLetter"], summary: "\(group) moves poison messages aside.")
            operations["\(group)SendsResults"] = operation(
                .send, Topology.resultsStream, ["CommandResult"], summary: "\(group) records command results.")
            for stream in definition.subscribes {
                let producer = linked.first { $0.0.eventStream == stream }?.1
                let types = handled.values.filter { $0.kind != .command }.map(\.type)
                    .filter { producer?.publishedContracts[$0] != nil }.sorted()
                operations["\(group)Receives\(channelID(stream).capitalizedFirst)"] = operation(
                    .receive, stream, types, group: group,
                    summary:
                        "\(group) reacts to \(types.isEmpty ? "nothing it handles" : types.joined(separator: ", ")) (consumer group \(group); other types are acknowledged unread)."
                )
            }
        }
        channels[channelID(Topology.resultsStream)] = channel(
            Topology.resultsStream, ["CommandResult"], "Command results, read by the gateway for waiting clients.")
        for definition in topology.services {
            let routed = Set(topology.routes.filter { $0.service == definition.name }.map(\.type)).sorted()
            guard !routed.isEmpty else { continue }
            operations["gatewaySendsTo\(definition.name.capitalizedFirst)"] = operation(
                .send, definition.commandStream, routed,
                summary: "The HTTP gateway submits \(definition.name)'s routed commands and queries.")
        }
        operations["gatewayReceivesResults"] = operation(
            .receive, Topology.resultsStream, ["CommandResult"], summary: "The HTTP gateway wakes waiting clients.")
        let document: Map = [
            "info": [
                "title": "Choreo streams", "version": "1",
                "description":
                    "The Redis streams between the services of this topology: commands, events, dead letters and results.",
            ] as Map,
            "defaultContentType": "application/json",
            "servers": ["redis": server(topology.redisURL)],
            "channels": channels, "operations": operations,
            "components": ["messages": messages] as Map,
        ]
        return "asyncapi: 3.0.0\n" + ((try? Yams.dump(object: document, width: -1, sortKeys: true)) ?? "")
    }

    enum Action: String { case send, receive }

    /// A channel id: the stream name without braces, dots as dashes (`users-commands`).
    static func channelID(_ stream: String) -> String {
        stream.filter { $0 != "{" && $0 != "}" }.replacingOccurrences(of: ".", with: "-").replacingOccurrences(
            of: ":", with: "-")
    }

    /// How a partitioned stream's messages are spread, for its channel's description.
    static func partitionNote(_ partitioning: StreamPartitioning) -> String {
        " Partitioned: \(partitioning.count) streams, one per partition, each message in partition "
            + "fnv1a32(\(partitioning.keyField.map { "payload.\($0)" } ?? "correlation")) mod \(partitioning.count); "
            + "a key's messages are handled in publish order."
    }

    static func channel(
        _ stream: String, _ types: [String], _ description: String, partitions: StreamPartitioning? = nil
    ) -> Map {
        var messages: Map = [:]
        for type in types { messages[type] = ["$ref": "#/components/messages/\(type)"] }
        var channel: Map = [
            "address": stream, "description": description, "messages": messages, "bindings": ["redis": Map()],
        ]
        // `{users}` in a key is a Redis Cluster hash tag, literal text; to AsyncAPI it reads as an
        // address parameter, so it is declared as one whose only value is that text.
        if let open = stream.firstIndex(of: "{"), let close = stream[open...].firstIndex(of: "}") {
            let name = String(stream[stream.index(after: open)..<close])
            channel["parameters"] =
                [
                    name: partitions.map { partitioning -> Map in
                        let tags = (0..<partitioning.count).map { "{\(name)#p\($0)}" }
                        return [
                            "enum": tags, "default": tags[0],
                            "description": "the partition's hash tag, literally: each partition is a stream of its own",
                        ]
                    }
                        ?? [
                            "enum": ["{\(name)}"], "default": "{\(name)}",
                            "description":
                                "the hash tag, literally: Redis Cluster keeps the service's keys in one slot",
                        ] as Map
                ] as Map
        }
        return channel
    }

    static func operation(
        _ action: Action, _ stream: String, _ types: [String], group: String? = nil, summary: String
    ) -> Map {
        let id = channelID(stream)
        var operation: Map = [
            "action": action.rawValue, "channel": ["$ref": "#/channels/\(id)"], "summary": summary,
            "messages": types.map { ["$ref": "#/channels/\(id)/messages/\($0)"] },
        ]
        if let group { operation["x-consumer-group"] = group }
        return operation
    }

    /// A message of a contract: its payload schema and the envelope as headers.
    static func message(_ contract: ContractDescription) -> Map {
        var message: Map = [
            "name": contract.type, "contentType": "application/json", "headers": envelopeHeaders(),
            "payload": schema(contract.shape),
        ]
        switch contract.kind {
        case .event: message["summary"] = "An event (\(contract.swiftType))."
        case .command: message["summary"] = "A command or query (\(contract.swiftType))."
        case .untyped: message["summary"] = "Registered by name; no declared payload."
        }
        return message
    }

    /// The envelope fields every entry carries besides `data` (the payload).
    static func envelopeHeaders() -> Map {
        let string: Map = ["type": "string"]
        return [
            "type": "object", "required": ["id", "type", "correlation", "causation", "traceparent", "at", "v"],
            "properties": [
                "id": ["type": "string", "description": "the message id (inbox dedup key)"] as Map,
                "type": ["type": "string", "description": "the message type"] as Map,
                "correlation": ["type": "string", "description": "the saga: the id of the command that started it"]
                    as Map,
                "causation": ["type": "string", "description": "the id of the message that caused this one"] as Map,
                "traceparent": ["type": "string", "description": "W3C trace context"] as Map,
                "at": ["type": "string", "description": "milliseconds since 1970, as text"] as Map,
                "v": string, "replays": string,
            ] as Map,
        ]
    }

    static func deadLetterMessage() -> Map {
        [
            "name": "DeadLetter", "contentType": "application/json",
            "summary": "The original entry's fields plus why and where it failed.",
            "headers": [
                "type": "object",
                "properties": Dictionary(
                    uniqueKeysWithValues: [
                        DeadLetter.error, DeadLetter.sourceStream, DeadLetter.sourceID, DeadLetter.group,
                        DeadLetter.consumer, DeadLetter.deliveries, DeadLetter.deadAt,
                    ].map { ($0, ["type": "string"] as Map) }) as Map,
            ] as Map,
            "payload": Map(),
        ]
    }

    static func resultMessage() -> Map {
        [
            "name": "CommandResult", "contentType": "application/json",
            "summary": "A command's outcome: `succeeded` with the result, or `failed` with {code, reason}.",
            "headers": [
                "type": "object", "required": ["command", "status", "type"],
                "properties": [
                    "command": ["type": "string"], "status": ["type": "string", "enum": ["succeeded", "failed"]],
                    "type": ["type": "string"], "causation": ["type": "string"], "at": ["type": "string"],
                ] as Map,
            ] as Map,
            "payload": Map(),
        ]
    }

    /// A JSON Schema of a payload shape.
    static func schema(_ shape: MessageShape) -> Map {
        switch shape {
        case .string: return ["type": "string"]
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .unknown: return [:]
        case .array(let element): return ["type": "array", "items": schema(element)]
        case .object(let fields):
            var object: Map = ["type": "object", "properties": fields.mapValues { schema($0.shape) }]
            let required = fields.filter(\.value.required).keys.sorted()
            if !required.isEmpty { object["required"] = required }
            return object
        }
    }

    /// The Redis server of the topology (host and port, credentials left out).
    static func server(_ url: String) -> Map {
        var rest = url.hasPrefix("redis://") ? String(url.dropFirst(8)) : url
        if let at = rest.lastIndex(of: "@") { rest = String(rest[rest.index(after: at)...]) }
        let host = rest.split(separator: "/").first.map(String.init) ?? rest
        return [
            "host": host, "protocol": "redis",
            "description": "Redis (a standalone server, or any node of a cluster); streams are consumer-group read.",
        ]
    }
}

extension String {
    /// The string with its first letter upper-cased (`users-events` -> `Users-events`).
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}

/// Serves the AsyncAPI document at `GET /asyncapi.yaml` (public, like `/openapi.yaml`).
public struct AsyncAPIRoute: GatewayExtension {
    let text: String

    /// Serves `text`.
    public init(_ text: String) { self.text = text }

    public func registerPublic(on router: Router<BasicRequestContext>, gateway: Gateway) {
        let text = text
        router.get("/asyncapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
