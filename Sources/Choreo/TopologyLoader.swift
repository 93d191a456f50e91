// TopologyLoader: parses and validates streams.yml into a Topology, with errors that name the
// file, the key path, the line and the problem; applies environment overrides.

import Foundation
import Redis
import Yams

extension Topology {
    /// Loads `path`, then applies `REDIS_URL`, `DATABASE_URL` and each service's
    /// `DATABASE_URL_{NAME}` and `REDIS_URL_{NAME}` from `environment`.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> Topology
    {
        let name = (path as NSString).lastPathComponent
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TopologyError(file: name, path: "", line: nil, message: "cannot read \(path)")
        }
        var topology = try parse(yaml: text, file: name)
        if let url = environment["REDIS_URL"], !url.isEmpty { topology.redisURL = url }
        if let level = environment["CHOREO_REDIS_DURABILITY"], !level.isEmpty {
            guard let parsed = RedisDurability.Level(rawValue: level) else {
                throw TopologyError(
                    file: "environment", path: "CHOREO_REDIS_DURABILITY", line: nil,
                    message: "must be acknowledged or replicated (got '\(level)')")
            }
            topology.redisDurability.level = parsed
        }
        if let url = environment["DATABASE_URL"], !url.isEmpty { topology.postgresURL = url }
        for index in topology.services.indices {
            let variable = Topology.postgresURLVariable(topology.services[index].name)
            if let url = environment[variable], !url.isEmpty { topology.services[index].postgresURL = url }
            let redisVariable = Topology.redisURLVariable(topology.services[index].name)
            if let url = environment[redisVariable], !url.isEmpty { topology.services[index].redisURL = url }
        }
        return topology
    }

    /// Parses and validates topology YAML. `file` names the source in errors.
    public static func parse(yaml: String, file: String = "streams.yml") throws -> Topology {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw TopologyError(file: file, path: "", line: nil, message: "not valid YAML: \(error)")
        }
        guard let root else { throw TopologyError(file: file, path: "", line: nil, message: "the file is empty") }
        return try TopologyReader(file: file).topology(root)
    }
}

/// Walks the YAML tree, keeping the key path for error messages.
private struct TopologyReader {
    let file: String

    func fail(_ path: String, _ node: Node?, _ message: String) -> TopologyError {
        TopologyError(file: file, path: path, line: node?.mark?.line, message: message)
    }

    func mapping(_ node: Node, _ path: String, allowed: Set<String>) throws -> [(String, Node)] {
        guard let mapping = node.mapping else { throw fail(path, node, "must be a mapping") }
        var pairs: [(String, Node)] = []
        var seen: Set<String> = []
        for (key, value) in mapping {
            guard let name = key.string else { throw fail(path, key, "keys must be strings") }
            // YAML lets a later duplicate replace an earlier one silently; here it is an error.
            guard seen.insert(name).inserted else {
                throw fail(path.isEmpty ? name : "\(path).\(name)", key, "duplicate key")
            }
            guard allowed.contains(name) else {
                throw fail(
                    path.isEmpty ? name : "\(path).\(name)", key,
                    "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
            pairs.append((name, value))
        }
        return pairs
    }

    func string(_ node: Node, _ path: String) throws -> String {
        guard let scalar = node.scalar, !scalar.string.isEmpty else {
            throw fail(path, node, "must be a non-empty string")
        }
        return scalar.string
    }

    func int(_ node: Node, _ path: String) throws -> Int {
        guard let value = node.scalar.flatMap({ Int($0.string.replacingOccurrences(of: "_", with: "")) }) else {
            throw fail(path, node, "must be an integer (got '\(node.scalar?.string ?? "a collection")')")
        }
        return value
    }

    func double(_ node: Node, _ path: String) throws -> Double {
        guard let value = node.scalar.flatMap({ Double($0.string) }) else {
            throw fail(path, node, "must be a number (got '\(node.scalar?.string ?? "a collection")')")
        }
        return value
    }

    func bool(_ node: Node, _ path: String) throws -> Bool {
        switch node.scalar?.string {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw fail(path, node, "must be true or false")
        }
    }

    /// `250ms`, `2s`, `1.5m`, `1h`, `7d`, or a bare number of seconds.
    func duration(_ node: Node, _ path: String) throws -> Double {
        guard let text = node.scalar?.string.trimmingCharacters(in: .whitespaces) else {
            throw fail(path, node, "must be a duration like 250ms, 2s, 5m")
        }
        if let value = Topology.seconds(text) { return value }
        throw fail(path, node, "must be a duration like 250ms, 2s, 5m (got '\(text)')")
    }

    func strings(_ node: Node, _ path: String) throws -> [String] {
        guard let sequence = node.sequence else { throw fail(path, node, "must be a list") }
        return try sequence.enumerated().map { index, item in try string(item, "\(path)[\(index)]") }
    }

    /// `redis: {url, durability, replicas, replica_timeout}`.
    func redis(_ node: Node, into topology: inout Topology) throws {
        for (name, item) in try mapping(
            node, "redis", allowed: ["url", "durability", "replicas", "replica_timeout", "republish_window"])
        {
            switch name {
            case "url": topology.redisURL = try string(item, "redis.url")
            case "durability":
                let text = try string(item, "redis.durability")
                guard let level = RedisDurability.Level(rawValue: text) else {
                    throw fail("redis.durability", item, "must be acknowledged or replicated (got '\(text)')")
                }
                topology.redisDurability.level = level
            case "replicas":
                let count = try int(item, "redis.replicas")
                guard count >= 1 else { throw fail("redis.replicas", item, "must be at least 1") }
                topology.redisDurability.replicas = count
            case "republish_window":
                topology.redisDurability.republishWindow = try duration(item, "redis.republish_window")
            default: topology.redisDurability.timeout = try duration(item, "redis.replica_timeout")
            }
        }
    }

    func topology(_ root: Node) throws -> Topology {
        var topology = Topology(services: [])
        var defaults = ServicePolicy()
        var servicesNode: Node?
        var routesNode: Node?
        for (key, value) in try mapping(
            root, "", allowed: ["version", "redis", "postgres", "defaults", "services", "routes", "results"])
        {
            switch key {
            case "version":
                guard try int(value, key) == 1 else { throw fail(key, value, "only version 1 is supported") }
            case "redis":
                if value.mapping != nil {
                    try redis(value, into: &topology)
                } else {
                    topology.redisURL = try string(value, key)
                }
            case "postgres": topology.postgresURL = try string(value, key)
            case "defaults": defaults = try policy(value, "defaults", base: ServicePolicy())
            case "results":
                for (name, item) in try mapping(value, key, allowed: ["maxlen", "ttl"]) {
                    if name == "maxlen" { topology.resultsMaxLength = try int(item, "results.maxlen") }
                    if name == "ttl" { topology.commandTTL = try duration(item, "results.ttl") }
                }
            case "services": servicesNode = value
            default: routesNode = value
            }
        }
        guard let servicesNode, let services = servicesNode.mapping, !services.isEmpty else {
            throw fail("services", servicesNode ?? root, "at least one service is required")
        }
        for (key, value) in services {
            topology.services.append(try service(try string(key, "services"), value, defaults: defaults))
        }
        if let routesNode {
            guard let sequence = routesNode.sequence else { throw fail("routes", routesNode, "must be a list") }
            for (index, item) in sequence.enumerated() {
                topology.routes.append(try route(item, "routes[\(index)]"))
            }
        }
        try validate(topology, servicesNode: servicesNode, routesNode: routesNode)
        return topology
    }

    func service(_ name: String, _ node: Node, defaults: ServicePolicy) throws -> ServiceDefinition {
        let path = "services.\(name)"
        guard name.range(of: "^[a-z][a-z0-9_-]*$", options: .regularExpression) != nil else {
            throw fail(path, node, "service names are lowercase letters, digits, '-' and '_'")
        }
        var service = ServiceDefinition(name: name, policy: defaults)
        if node.scalar?.string == "" || node.scalar?.string == "~" { return service }
        for (key, value) in try mapping(
            node, path,
            allowed: ["schema", "consumes", "publishes", "policy", "code", "settings", "events", "commands"])
        {
            switch key {
            case "code": service.code = try string(value, "\(path).code")
            case "schema":
                let schema = try string(value, "\(path).schema")
                guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
                    throw fail("\(path).schema", value, "must be a lowercase identifier (got '\(schema)')")
                }
                service.schema = schema
            case "consumes":
                service.subscribes = try strings(value, "\(path).consumes").map(Topology.streamKey).filter {
                    $0 != service.commandStream
                }
            case "publishes":
                service.publishes = try strings(value, "\(path).publishes").map(Topology.streamKey).filter {
                    $0 != service.eventStream
                }
            case "events":
                service.eventPartitioning = try partitioning(value, "\(path).events", stream: service.eventStream)
            case "commands":
                service.commandPartitioning = try partitioning(
                    value, "\(path).commands", stream: service.commandStream, keyRequired: true)
            case "settings":
                guard let pairs = value.mapping else { throw fail("\(path).settings", value, "must be a mapping") }
                for (name, item) in pairs {
                    guard let key = name.string, let scalar = item.scalar else {
                        throw fail("\(path).settings", item, "values must be scalars (strings, numbers, durations)")
                    }
                    guard service.settings[key] == nil else {
                        throw fail("\(path).settings.\(key)", name, "duplicate key")
                    }
                    service.settings[key] = scalar.string
                }
            default: service.policy = try policy(value, "\(path).policy", base: defaults)
            }
        }
        return service
    }

    /// `events: {partitions: N, key: field}`: a partitioned events stream.
    func partitioning(_ node: Node, _ path: String, stream: String, keyRequired: Bool = false) throws
        -> StreamPartitioning?
    {
        var count: Int?
        var key: String?
        for (name, value) in try mapping(node, path, allowed: ["partitions", "key"]) {
            switch name {
            case "partitions":
                let value = try int(value, "\(path).partitions")
                guard (1...StreamPartitioning.maximumCount).contains(value) else {
                    throw fail(
                        "\(path).partitions", node,
                        "must be between 1 and \(StreamPartitioning.maximumCount) (got \(value))")
                }
                count = value
            default:
                let field = try string(value, "\(path).key")
                guard field.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                    throw fail("\(path).key", value, "must be a payload field name (got '\(field)')")
                }
                key = field
            }
        }
        guard let count else { throw fail("\(path).partitions", node, "is required (how many partitions)") }
        if keyRequired, key == nil {
            throw fail(
                "\(path).key", node,
                "is required for a commands stream (a payload field: a submitted command's correlation is its new id, "
                    + "so retries with its Idempotency-Key must find the same partition by the payload)")
        }
        guard count > 1 else { return nil }
        return StreamPartitioning(stream: stream, count: count, keyField: key)
    }

    func policy(_ node: Node, _ path: String, base: ServicePolicy) throws -> ServicePolicy {
        var policy = base
        let keys: Set<String> = [
            "batch", "block", "max_deliveries", "backoff", "claim_idle", "shutdown_timeout", "processes", "maxlen",
            "inbox_retention", "max_lag", "batch_lock_timeout", "max_message_bytes",
            "lock_timeout", "statement_timeout", "not_yet_limit", "partition_concurrency",
        ]
        for (key, value) in try mapping(node, path, allowed: keys) {
            let at = "\(path).\(key)"
            switch key {
            case "batch": policy.batch = try int(value, at)
            case "block": policy.block = try duration(value, at)
            case "max_deliveries": policy.maxDeliveries = try int(value, at)
            case "claim_idle": policy.claimIdle = try duration(value, at)
            case "shutdown_timeout": policy.shutdownTimeout = try duration(value, at)
            case "processes": policy.processes = try int(value, at)
            case "maxlen": policy.maxLength = try int(value, at)
            case "inbox_retention": policy.inboxRetention = try duration(value, at)
            case "max_lag": policy.maxLag = try int(value, at)
            case "partition_concurrency": policy.partitionConcurrency = try int(value, at)
            case "batch_lock_timeout": policy.batchLockTimeout = try duration(value, at)
            case "lock_timeout": policy.lockTimeout = try duration(value, at)
            case "not_yet_limit": policy.notYetLimit = try duration(value, at)
            case "statement_timeout": policy.statementTimeout = try duration(value, at)
            case "max_message_bytes": policy.maxMessageBytes = try int(value, at)
            default:
                for (name, item) in try mapping(value, at, allowed: ["initial", "max", "multiplier", "jitter"]) {
                    switch name {
                    case "initial": policy.backoff.initial = try duration(item, "\(at).initial")
                    case "max": policy.backoff.max = try duration(item, "\(at).max")
                    case "multiplier": policy.backoff.multiplier = try double(item, "\(at).multiplier")
                    default: policy.backoff.jitter = try double(item, "\(at).jitter")
                    }
                }
            }
        }
        if let (key, message) = policy.problems().first {
            throw fail("\(path).\(key)", node, message)
        }
        return policy
    }

    func route(_ node: Node, _ path: String) throws -> RouteDefinition {
        var method: String?
        var routePath: String?
        var service: String?
        var type: String?
        var body: [String: FieldSpec] = [:]
        var summary = ""
        for (key, value) in try mapping(
            node, path, allowed: ["method", "path", "service", "command", "query", "body", "summary"])
        {
            let at = "\(path).\(key)"
            switch key {
            case "method": method = try string(value, at).uppercased()
            case "path": routePath = try string(value, at)
            case "service": service = try string(value, at)
            case "command", "query": type = try string(value, at)
            case "summary": summary = try string(value, at)
            default: body = try fields(value, at)
            }
        }
        guard let routePath, routePath.hasPrefix("/") else {
            throw fail("\(path).path", node, "a path starting with '/' is required")
        }
        guard let service else { throw fail("\(path).service", node, "is required") }
        guard let type else { throw fail("\(path).command", node, "a command or query type is required") }
        let verb = method ?? "POST"
        guard verb == "POST" || verb == "GET" else {
            throw fail("\(path).method", node, "must be POST or GET (got \(verb))")
        }
        return RouteDefinition(
            method: verb, path: routePath, service: service, type: type, body: body, summary: summary)
    }

    func fields(_ node: Node, _ path: String) throws -> [String: FieldSpec] {
        guard let pairs = node.mapping else { throw fail(path, node, "must be a mapping of field names to specs") }
        var result: [String: FieldSpec] = [:]
        for (key, value) in pairs {
            let name = try string(key, path)
            let at = "\(path).\(name)"
            if let shorthand = value.scalar?.string {
                guard let type = FieldType(rawValue: shorthand) else {
                    throw fail(at, value, "unknown type '\(shorthand)'")
                }
                result[name] = FieldSpec(type: type)
                continue
            }
            var spec = FieldSpec(type: .string)
            for (option, item) in try mapping(value, at, allowed: ["type", "required", "min", "max", "items"]) {
                switch option {
                case "type":
                    let raw = try string(item, "\(at).type")
                    guard let type = FieldType(rawValue: raw) else {
                        throw fail(
                            "\(at).type", item,
                            "unknown type '\(raw)' (expected \(FieldType.allCases.map(\.rawValue).joined(separator: ", ")))"
                        )
                    }
                    spec.type = type
                case "required": spec.required = try bool(item, "\(at).required")
                case "min": spec.min = try int(item, "\(at).min")
                case "max": spec.max = try int(item, "\(at).max")
                default: spec.items = try fields(item, "\(at).items")
                }
            }
            result[name] = spec
        }
        return result
    }

    func validate(_ topology: Topology, servicesNode: Node, routesNode: Node?) throws {
        var published: Set<String> = [Topology.resultsStream]
        for service in topology.services {
            published.insert(service.eventStream)
            published.insert(service.commandStream)
            published.formUnion(service.publishes)
        }
        var schemas: [String: String] = [:]
        for (index, service) in topology.services.enumerated() {
            let node = servicesNode.mapping?[index].value
            for (position, stream) in service.subscribes.enumerated() where !published.contains(stream) {
                throw fail(
                    "services.\(service.name).consumes[\(position)]", node,
                    "no service publishes '\(stream)' (known streams: \(published.sorted().joined(separator: ", ")))")
            }
            if let schema = service.schema {
                if let other = schemas[schema] {
                    throw fail(
                        "services.\(service.name).schema", node,
                        "schema '\(schema)' is already used by service '\(other)'")
                }
                schemas[schema] = service.name
            }
        }
        for (index, route) in topology.routes.enumerated() {
            let node = routesNode?.sequence?[index]
            guard topology.service(route.service) != nil else {
                throw fail("routes[\(index)].service", node, "unknown service '\(route.service)'")
            }
            if let duplicate = topology.routes[..<index].firstIndex(where: {
                $0.method == route.method && $0.path == route.path
            }) {
                throw fail(
                    "routes[\(index)].path", node, "\(route.method) \(route.path) is already routes[\(duplicate)]")
            }
        }
    }
}
