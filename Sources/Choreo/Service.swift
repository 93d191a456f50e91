// Service: a service's code: its handlers by message type and its schema migrations.

import Postgres

/// A handler: a decoded message and its context in; state changes (through the context's
/// transaction) and emitted messages out. Handlers never see Redis.
public typealias MessageHandler = @Sendable (MessageContext) throws -> Void

/// The code of one service: handlers registered by message type, and the migrations of its
/// schema. Pair it with a ``ServiceDefinition`` from the topology to run it.
public struct Service: Sendable {
    /// The service name, matching the topology.
    public let name: String
    /// Numbered migrations of the service's schema.
    public var migrations: [Migration]
    private(set) var handlers: [String: MessageHandler] = [:]

    /// Creates a service with no handlers.
    public init(name: String, migrations: [Migration] = []) {
        self.name = name
        self.migrations = migrations
    }

    /// Registers `handler` for messages of `type` (replacing any earlier one).
    public mutating func on(_ type: String, _ handler: @escaping MessageHandler) {
        handlers[type] = handler
    }

    /// The handler for `type`, if registered.
    public func handler(for type: String) -> MessageHandler? {
        handlers[type]
    }

    /// The message types it handles.
    public var handledTypes: [String] { handlers.keys.sorted() }
}
