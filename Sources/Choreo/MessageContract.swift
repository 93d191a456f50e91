// MessageContract: a message type defined once, by the service that owns it, with its name on
// the wire. Handlers register by contract and emit contract values, so a producer and its
// consumers share one declaration and ``ContractCheck`` can compare what each side expects.

/// A message type: a `Codable` payload and its `type` on the wire (the envelope's `type`).
///
/// Define each contract once, in the module of the service that produces it (events) or
/// handles it (commands), and let the other side import that module:
///
/// ```swift
/// public struct StockReserved: EventContract {
///     public var orderId: String
///     public var lines: [OrderLine]
/// }
/// ```
public protocol MessageContract: Codable, Sendable {
    /// The envelope's `type`; by default the Swift type's name.
    static var messageType: String { get }
}

extension MessageContract {
    /// The Swift type's name, e.g. `StockReserved`.
    public static var messageType: String { String(describing: Self.self) }
}

/// A fact a service publishes on its own events stream; any service consuming that stream may
/// react to it.
public protocol EventContract: MessageContract {}

/// A request addressed to one service's commands stream (by the gateway, or by another
/// service with ``MessageContext/send(_:to:)``); queries are commands with a result.
public protocol CommandContract: MessageContract {}

/// A contract as a value: its wire name, its kind and the shape of its payload.
public struct ContractDescription: Sendable, Equatable, CustomStringConvertible {
    /// Whether a contract is an event or a command.
    public enum Kind: String, Sendable, Equatable {
        case event, command, untyped
    }

    /// The envelope's `type`.
    public var type: String
    /// Event, command, or `untyped` (a handler registered by name only).
    public var kind: Kind
    /// The Swift type, e.g. `ShopContracts.StockReserved` (empty when untyped).
    public var swiftType: String
    /// The payload's JSON shape, as the Swift type decodes it.
    public var shape: MessageShape

    /// The description of `contract`.
    public init<M: MessageContract>(_ contract: M.Type) {
        type = M.messageType
        kind = contract is any EventContract.Type ? .event : contract is any CommandContract.Type ? .command : .untyped
        swiftType = String(reflecting: contract)
        shape = MessageShape.of(contract)
    }

    /// A handler registered by name, with no declared payload.
    public init(untyped type: String) {
        self.type = type
        kind = .untyped
        swiftType = ""
        shape = .unknown
    }

    public var description: String { swiftType.isEmpty ? type : "\(type) (\(swiftType))" }
}
