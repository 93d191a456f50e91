// Topology: the services, their streams and policies, and the HTTP routes, as read from
// streams.yml. The gateway and the workers are generic over it.

import Foundation
import Redis

/// One service of the topology: a worker pool with its own schema and streams.
public struct ServiceDefinition: Sendable, Equatable {
    /// The service name; also the consumer group name on every stream it reads.
    public var name: String
    /// The Postgres schema holding its state; `nil` for a stateless service (no inbox: its
    /// handlers must be idempotent themselves).
    public var schema: String?
    /// Streams it reads besides its own inbox (`{name}.commands`), e.g. `users.events`.
    public var subscribes: [String]
    /// Extra streams it writes to besides its own events stream (e.g. `payments.commands`).
    public var publishes: [String]
    /// Its delivery policy.
    public var policy: ServicePolicy
    /// The name of the code that implements it (default: the service name). Lets one
    /// implementation run as several services, e.g. in tests.
    public var code: String
    /// The service's own Postgres URL (a login role allowed into its schema only), from the
    /// `DATABASE_URL_{NAME}` environment variable; `nil` means the topology's shared URL.
    public var postgresURL: String?
    /// The service's own Redis URL (an ACL user allowed only its streams and keys), from the
    /// `REDIS_URL_{NAME}` environment variable; `nil` means the topology's shared URL.
    public var redisURL: String?
    /// Settings for the service's own code (`settings:` in `streams.yml`, e.g. the reference
    /// orders service's `saga_deadline`), as written; the code parses and validates them.
    public var settings: [String: String] = [:]
    /// How its events stream is partitioned (`events: {partitions: N, key: field}` in
    /// streams.yml); `nil`: one stream.
    public var eventPartitioning: StreamPartitioning?
    /// How its commands stream is partitioned (`commands: {partitions: N, key: field}`; the key
    /// field is required: a submitted command's correlation is its new id); `nil`: one stream.
    public var commandPartitioning: StreamPartitioning?

    /// Creates a service definition.
    public init(
        name: String, schema: String? = nil, subscribes: [String] = [], publishes: [String] = [],
        policy: ServicePolicy = ServicePolicy(), code: String? = nil
    ) {
        self.name = name
        self.code = code ?? name
        self.schema = schema
        self.subscribes = subscribes
        self.publishes = publishes
        self.policy = policy
    }

    /// `{name}.commands`: commands from the gateway and other services, queries, replays.
    /// The braces are a Redis Cluster hash tag: every key of the service shares one slot.
    public var commandStream: String { "{\(name)}.commands" }
    /// `{name}.events`: facts the service publishes.
    public var eventStream: String { "{\(name)}.events" }
    /// `{name}.dead`: its dead letters.
    public var deadStream: String { "{\(name)}.dead" }
    /// The hash tag of the service's keys: `{name}`.
    public var hashTag: String { "{\(name)}" }
    /// Every stream it consumes: its inbox first, then its subscriptions.
    public var consumedStreams: [String] { [commandStream] + subscribes }

    /// The Redis stream an event with payload `data` of saga `correlation` is written to: the
    /// events stream, or its partition for that key.
    public func eventStream(data: String, correlation: String) -> String {
        guard let eventPartitioning else { return eventStream }
        return eventPartitioning.key(eventPartitioning.partition(data: data, correlation: correlation))
    }

    /// The Redis stream a command with payload `data` is written to: the commands stream, or
    /// its partition for that key.
    public func commandStream(data: String, correlation: String) -> String {
        guard let commandPartitioning else { return commandStream }
        return commandPartitioning.key(commandPartitioning.partition(data: data, correlation: correlation))
    }

    /// Whether Redis key `key` is this service's commands stream or one of its partitions.
    public func isCommandStream(_ key: String) -> Bool {
        key == commandStream || commandPartitioning?.index(ofKey: key) != nil
    }

    /// The hash tag the idempotency record of a command written to `stream` carries: the
    /// stream's own (the service's, or its partition's), so the check and the `XADD` share a slot.
    public func idempotencyTag(for stream: String) -> String {
        guard stream.hasPrefix("{"), let close = stream.firstIndex(of: "}") else { return name }
        return String(stream[stream.index(after: stream.startIndex)..<close])
    }
}

/// The type of a field in a route's JSON body.
public enum FieldType: String, Sendable, Equatable, CaseIterable {
    case string, integer, boolean, uuid, email, array, object
}

/// One field of a route's JSON body, validated by the gateway (reject, never coerce).
public struct FieldSpec: Sendable, Equatable {
    /// The JSON type.
    public var type: FieldType
    /// Whether the field must be present.
    public var required: Bool = true
    /// Minimum (integers) or minimum length (strings, arrays).
    public var min: Int?
    /// Maximum (integers) or maximum length (strings, arrays).
    public var max: Int?
    /// For arrays of objects: the fields of each element.
    public var items: [String: FieldSpec]?

    /// Creates a field spec.
    public init(
        type: FieldType, required: Bool = true, min: Int? = nil, max: Int? = nil, items: [String: FieldSpec]? = nil
    ) {
        self.type = type
        self.required = required
        self.min = min
        self.max = max
        self.items = items
    }
}

/// An HTTP route of the gateway: a command (POST, answered 202) or a query (GET, answered
/// with the owning service's reply).
public struct RouteDefinition: Sendable, Equatable {
    /// `POST` or `GET`.
    public var method: String
    /// The path, with `{param}` segments, e.g. `/v1/orders/{id}/items`.
    public var path: String
    /// The service that handles it.
    public var service: String
    /// The message type sent, e.g. `PlaceOrder` or `GetUser`.
    public var type: String
    /// The body fields (POST routes).
    public var body: [String: FieldSpec]
    /// A one-line description for the OpenAPI document.
    public var summary: String

    /// Creates a route.
    public init(
        method: String, path: String, service: String, type: String, body: [String: FieldSpec] = [:],
        summary: String = ""
    ) {
        self.method = method
        self.path = path
        self.service = service
        self.type = type
        self.body = body
        self.summary = summary
    }

    /// The `{param}` names in the path, in order.
    public var pathParameters: [String] {
        path.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
    }
}

/// The whole topology: connection URLs, services and routes.
public struct Topology: Sendable, Equatable {
    /// Redis URL (the `REDIS_URL` environment variable overrides the file).
    public var redisURL: String
    /// When a Redis write counts as done (`redis.durability` in streams.yml; the
    /// `CHOREO_REDIS_DURABILITY` environment variable overrides it).
    public var redisDurability = RedisDurability.acknowledged
    /// Postgres URL (the `DATABASE_URL` environment variable overrides the file).
    public var postgresURL: String
    /// The services, in file order.
    public var services: [ServiceDefinition]
    /// The HTTP routes, in file order.
    public var routes: [RouteDefinition]
    /// Approximate cap of `choreo.results`.
    public var resultsMaxLength: Int = 100_000
    /// How long `choreo:command:{id}` hashes live, in seconds (default 24 h).
    public var commandTTL: Double = 24 * 3600

    /// Creates a topology.
    public init(
        redisURL: String = Topology.defaultRedisURL, postgresURL: String = Topology.defaultPostgresURL,
        services: [ServiceDefinition], routes: [RouteDefinition] = []
    ) {
        self.redisURL = redisURL
        self.postgresURL = postgresURL
        self.services = services
        self.routes = routes
    }

    /// The Redis URL used when neither the file nor the environment names one.
    public static let defaultRedisURL = "redis://127.0.0.1:6379/0"
    /// The Postgres URL used when neither the file nor the environment names one.
    public static let defaultPostgresURL = "postgres://choreo:choreo@127.0.0.1:5432/choreo"
    /// The stream every command outcome is written to.
    public static let resultsStream = "choreo.results"

    /// The Postgres URL the workers of `service` connect with: its own, or the shared one.
    public func postgresURL(for service: ServiceDefinition) -> String {
        service.postgresURL ?? postgresURL
    }

    /// The Redis URL the workers of `service` connect with: its own, or the shared one.
    public func redisURL(for service: ServiceDefinition) -> String {
        service.redisURL ?? redisURL
    }

    /// The environment variable naming a service's own Redis URL: `REDIS_URL_{NAME}`.
    public static func redisURLVariable(_ service: String) -> String {
        "REDIS_URL_" + service.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The environment variable naming a service's own Postgres URL: `DATABASE_URL_{NAME}`,
    /// upper-cased, `-` as `_`.
    public static func postgresURLVariable(_ service: String) -> String {
        "DATABASE_URL_" + service.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// How long a query's reply record lives when no gateway reads it (the gateway deletes it
    /// as soon as it has read it), in seconds.
    public static let queryReplyTTL = 30

    /// The query types of `service`: the types of its `GET` routes. Queries are read-only by
    /// contract: they get no inbox row, and their replies expire within seconds.
    public func queryTypes(of service: String) -> Set<String> {
        Set(routes.filter { $0.method == "GET" && $0.service == service }.map(\.type))
    }

    /// The service named `name`.
    public func service(_ name: String) -> ServiceDefinition? {
        services.first { $0.name == name }
    }

    /// The services that consume `stream` (its key, a partition's key, or its name in streams.yml).
    public func consumers(of stream: String) -> [ServiceDefinition] {
        let key = logicalStream(ofKey: Self.streamKey(stream))
        return services.filter { $0.consumedStreams.contains(key) }
    }

    /// The partitioning of `stream` (its key, or its name in streams.yml), when its publisher
    /// partitions it.
    public func partitioning(of stream: String) -> StreamPartitioning? {
        let key = Self.streamKey(stream)
        return partitionings.first { $0.stream == key }
    }

    /// Every partitioned stream's partitioning (events and commands).
    public var partitionings: [StreamPartitioning] {
        services.flatMap { [$0.eventPartitioning, $0.commandPartitioning].compactMap { $0 } }
    }

    /// The Redis stream a message with `fields` sent to `stream` is written to: `stream`, or
    /// its key's partition when `stream` is partitioned.
    public func route(_ stream: String, fields: [StreamField]) -> String {
        partitioning(of: stream)?.key(for: fields) ?? stream
    }

    /// The Redis keys holding `stream`'s entries: its partitions' keys, or the stream itself.
    public func keys(of stream: String) -> [String] {
        partitioning(of: stream)?.keys ?? [Self.streamKey(stream)]
    }

    /// Every Redis stream key `service` reads: each consumed stream, or its partitions.
    public func consumedKeys(of service: ServiceDefinition) -> [String] {
        service.consumedStreams.flatMap(keys(of:))
    }

    /// The stream (as consumed) that Redis key `key` belongs to: a partition's stream, or the key.
    public func logicalStream(ofKey key: String) -> String {
        guard key.contains("#p") else { return key }
        return partitionings.first { $0.index(ofKey: key) != nil }?.stream ?? key
    }

    /// The key of a command's status hash (found by the command id alone, so in a slot of its
    /// own, not the service's).
    public static func commandKey(_ id: String) -> String { "choreo:command:\(id)" }
    /// The key of an idempotency record: in the slot of the service's commands stream, so the
    /// check and the XADD are one script.
    public static func idempotencyKey(service: String, principal: String?, key: String) -> String {
        "choreo:idempotency:{\(service)}:" + (principal.map { "\($0):" } ?? "") + key
    }
    /// The key of a service's heartbeats (in the service's slot).
    public static func workersKey(_ service: String) -> String { "choreo:workers:{\(service)}" }

    /// The Redis key of a stream named in streams.yml: `users.events` (or `users.commands`,
    /// `users.dead`) is the service's hash-tagged stream `{users}.events`; any other name is
    /// taken as the key itself.
    public static func streamKey(_ name: String) -> String {
        guard !name.hasPrefix("{"), let dot = name.lastIndex(of: ".") else { return name }
        let service = name[..<dot]
        let kind = name[name.index(after: dot)...]
        guard ["events", "commands", "dead"].contains(kind), !service.isEmpty,
            service.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        else { return name }
        return "{\(service)}.\(kind)"
    }

    /// A duration as `streams.yml` writes it, in seconds: `250ms`, `2s`, `1.5m`, `1h`, `7d`,
    /// or a bare number of seconds; `nil` if it is none of these.
    public static func seconds(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)) { return value * scale }
        }
        return Double(text)
    }

    /// The nearest `streams.yml` from `folder` up to the root, the way git finds `.git`; `nil`
    /// if there is none.
    public static func discoverFile(from folder: String, name: String = "streams.yml") -> String? {
        var current = URL(fileURLWithPath: folder).standardizedFileURL
        while true {
            let candidate = current.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }
}
