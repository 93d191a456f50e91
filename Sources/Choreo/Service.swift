// Service: a service's code: its handlers by message type, the contracts it handles, publishes
// and sends, and its schema migrations.

import Postgres

/// A handler: a decoded message and its context in; state changes (through the context's
/// transaction) and emitted messages out. Handlers never see Redis.
public typealias MessageHandler = @Sendable (MessageContext) throws -> Void

/// The code of one service: handlers registered by message type, the contracts it emits, and
/// the migrations of its schema. Pair it with a ``ServiceDefinition`` from the topology to run it.
///
/// ```swift
/// var service = Service(name: "inventory", migrations: migrations)
/// service.on(OrderPlaced.self) { context, order in ... try context.publish(StockReserved(...)) }
/// service.publishes(StockReserved.self, StockRejected.self)
/// ```
public struct Service: Sendable {
    /// The service name, matching the topology.
    public let name: String
    /// Numbered migrations of the service's schema.
    public var migrations: [Migration]
    private(set) var handlers: [String: MessageHandler] = [:]
    /// The contract of each handled type (an untyped description for handlers registered by
    /// name).
    public private(set) var handledContracts: [String: ContractDescription] = [:]
    /// The events it publishes on its events stream, by type.
    public private(set) var publishedContracts: [String: ContractDescription] = [:]
    /// The commands it sends to other services: by type, the contract and the target service.
    public private(set) var sentContracts: [String: (contract: ContractDescription, service: String)] = [:]

    /// Creates a service with no handlers.
    public init(name: String, migrations: [Migration] = []) {
        self.name = name
        self.migrations = migrations
    }

    /// Registers `handler` for messages of `type` (replacing any earlier one). The handler
    /// decodes the payload itself; prefer ``on(_:_:)-(M.Type,_)`` with a contract.
    public mutating func on(_ type: String, _ handler: @escaping MessageHandler) {
        handlers[type] = handler
        handledContracts[type] = ContractDescription(untyped: type)
    }

    /// Registers `handler` for the contract `message`: the payload is decoded as `M` (a payload
    /// that does not decode is poison, dead-lettered with the decoding error) and handed over.
    public mutating func on<M: MessageContract>(
        _ message: M.Type, _ handler: @escaping @Sendable (MessageContext, M) throws -> Void
    ) {
        handlers[M.messageType] = { context in try handler(context, try context.payload(M.self)) }
        handledContracts[M.messageType] = ContractDescription(message)
    }

    /// Declares events this service publishes (checked by ``ContractCheck`` against what its
    /// consumers handle, and by the handler harness against what the handlers emit).
    public mutating func publishes(_ events: any EventContract.Type...) {
        for event in events {
            let description = Self.describe(event)
            publishedContracts[description.type] = description
        }
    }

    /// Declares commands this service sends to `service`'s commands stream.
    public mutating func sends(_ commands: any CommandContract.Type..., to service: String) {
        for command in commands {
            let description = Self.describe(command)
            sentContracts[description.type] = (description, service)
        }
    }

    /// The handler for `type`, if registered.
    public func handler(for type: String) -> MessageHandler? {
        handlers[type]
    }

    /// The message types it handles.
    public var handledTypes: [String] { handlers.keys.sorted() }

    private static func describe(_ contract: any MessageContract.Type) -> ContractDescription {
        func open<M: MessageContract>(_ type: M.Type) -> ContractDescription { ContractDescription(type) }
        return open(contract)
    }
}
