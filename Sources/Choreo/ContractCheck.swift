// ContractCheck: compares, across a topology, what every service handles with what reaches it
// (the gateway's routes, commands other services send, events on the streams it consumes) and
// reports each subscription nothing feeds and each payload a consumer would misread.

/// One disagreement between a consumer and what reaches it.
public struct ContractProblem: Sendable, Equatable, CustomStringConvertible {
    /// The service whose handler, route or send is concerned.
    public var service: String
    /// The message type.
    public var type: String
    /// What is wrong, for a person.
    public var message: String

    public var description: String { "\(service) · \(type): \(message)" }
}

/// The contract check of a topology and the services' code.
///
/// A service's handler for `T` must be fed: by a route of the gateway to that service, by
/// another service that declares it sends `T` there, or by a service that declares it
/// publishes `T` on an events stream the service consumes. Each feeding side's payload shape
/// must decode as the handler's contract: every field it requires is sent, never optional, of
/// the same type. Run it in a test (`ContractCheck.problems(...)` is empty) or with
/// `choreo contracts`.
public enum ContractCheck {
    /// Every problem of `topology`, whose services' code `code` returns (`nil`: not linked in,
    /// not checked).
    public static func problems(_ topology: Topology, code: (ServiceDefinition) -> Service?) -> [ContractProblem] {
        let linked = topology.services.compactMap { definition in code(definition).map { (definition, $0) } }
        var problems: [ContractProblem] = []
        for (definition, service) in linked {
            for (type, contract) in service.handledContracts.sorted(by: { $0.key < $1.key }) {
                let sources = feeds(of: type, to: definition, consumer: contract, topology, linked)
                guard !sources.isEmpty else {
                    problems.append(
                        ContractProblem(
                            service: definition.name, type: type,
                            message: unfedMessage(type, definition, linked)))
                    continue
                }
                for (source, shape) in sources {
                    for mismatch in contract.shape.mismatches(readingFrom: shape) {
                        problems.append(
                            ContractProblem(
                                service: definition.name, type: type, message: "from \(source): \(mismatch)"))
                    }
                }
            }
        }
        problems += unhandledRoutes(topology, linked) + unhandledSends(topology, linked)
        return problems
    }

    /// What feeds `type` to `definition`: each source's name and payload shape.
    static func feeds(
        of type: String, to definition: ServiceDefinition, consumer: ContractDescription, _ topology: Topology,
        _ linked: [(ServiceDefinition, Service)]
    ) -> [(String, MessageShape)] {
        var sources: [(String, MessageShape)] = []
        for route in topology.routes where route.service == definition.name && route.type == type {
            sources.append(("\(route.method) \(route.path)", routeShape(route, consumer: consumer.shape)))
        }
        for (other, service) in linked {
            if let sent = service.sentContracts[type], sent.service == definition.name {
                sources.append(("\(other.name) (sends)", sent.contract.shape))
            }
            if definition.subscribes.contains(other.eventStream), let event = service.publishedContracts[type] {
                sources.append(("\(other.eventStream)", event.shape))
            }
        }
        return sources
    }

    /// The payload a route produces: the body's fields and the path parameters (strings); a
    /// query's optional string fields may come from the query string.
    static func routeShape(_ route: RouteDefinition, consumer: MessageShape) -> MessageShape {
        var fields = route.body.mapValues { MessageShape.Field(shape($0), required: $0.required) }
        for name in route.pathParameters { fields[name] = MessageShape.Field(.string) }
        if route.method == "GET", case .object(let wanted) = consumer {
            for (name, field) in wanted where fields[name] == nil && !field.required && field.shape == .string {
                fields[name] = MessageShape.Field(.string, required: false)
            }
        }
        return .object(fields)
    }

    /// The JSON shape a validated body field has.
    static func shape(_ field: FieldSpec) -> MessageShape {
        switch field.type {
        case .string, .uuid, .email: return .string
        case .integer: return .integer
        case .boolean: return .boolean
        case .array:
            return .array(
                field.items.map { .object($0.mapValues { MessageShape.Field(shape($0), required: $0.required) }) }
                    ?? .unknown)
        case .object:
            return field.items.map { .object($0.mapValues { MessageShape.Field(shape($0), required: $0.required) }) }
                ?? .unknown
        }
    }

    private static func unfedMessage(
        _ type: String, _ definition: ServiceDefinition, _ linked: [(ServiceDefinition, Service)]
    ) -> String {
        let elsewhere = linked.filter { $0.1.publishedContracts[type] != nil }.map { $0.0.eventStream }
        let consumed = definition.subscribes.isEmpty ? "none" : definition.subscribes.joined(separator: ", ")
        var message =
            "handled, but no route, no service sending to \(definition.name) and no stream it consumes "
            + "(\(consumed)) carries it"
        if !elsewhere.isEmpty { message += "; it is published on \(elsewhere.joined(separator: ", "))" }
        return message
    }

    private static func unhandledRoutes(_ topology: Topology, _ linked: [(ServiceDefinition, Service)])
        -> [ContractProblem]
    {
        topology.routes.compactMap { route in
            guard let service = linked.first(where: { $0.0.name == route.service })?.1,
                service.handler(for: route.type) == nil
            else { return nil }
            return ContractProblem(
                service: route.service, type: route.type,
                message: "\(route.method) \(route.path) sends it, but \(route.service) has no handler for it")
        }
    }

    private static func unhandledSends(_ topology: Topology, _ linked: [(ServiceDefinition, Service)])
        -> [ContractProblem]
    {
        var problems: [ContractProblem] = []
        for (definition, service) in linked {
            for (type, sent) in service.sentContracts.sorted(by: { $0.key < $1.key }) {
                let target = linked.first { $0.0.name == sent.service }
                if topology.service(sent.service) == nil {
                    problems.append(
                        ContractProblem(
                            service: definition.name, type: type, message: "sent to unknown service \(sent.service)"))
                } else if let target, target.1.handler(for: type) == nil {
                    problems.append(
                        ContractProblem(
                            service: definition.name, type: type,
                            message: "sent to \(sent.service), which has no handler for it"))
                }
            }
        }
        return problems
    }
}
