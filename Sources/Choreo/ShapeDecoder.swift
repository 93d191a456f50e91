// ShapeDecoder: a Decoder that feeds a type's synthesized `init(from:)` placeholder values and
// records which fields it asks for and as which types: the ``MessageShape`` of the type.

import Foundation

/// Records the shape of a `Decodable` type. Optional fields are recorded and left `nil`;
/// arrays are given one element; enums with raw values get their first case.
final class ShapeDecoder: Decoder {
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    /// The shape recorded so far.
    var shape: MessageShape = .unknown
    private let depth: Int

    private init(depth: Int) { self.depth = depth }

    /// Why a shape cannot be recorded.
    struct Unrecordable: Error { let reason: String }

    /// The shape of `type`.
    static func shape<T: Decodable>(of type: T.Type) throws -> MessageShape {
        try sample(type, depth: 0).shape
    }

    /// A placeholder value of `type` and its shape.
    static func sample<T: Decodable>(_ type: T.Type, depth: Int) throws -> (value: T, shape: MessageShape) {
        guard depth < 32 else { throw Unrecordable(reason: "nested too deep (recursive type?)") }
        if let primitive = primitive(type) { return primitive }
        if let caseValue = firstCase(of: type) { return (caseValue, .string) }
        let decoder = ShapeDecoder(depth: depth + 1)
        let value = try T(from: decoder)
        return (value, decoder.shape)
    }

    /// Types whose `init(from:)` validates its input (a UUID string, a URL), given directly.
    private static func primitive<T>(_ type: T.Type) -> (value: T, shape: MessageShape)? {
        switch type {
        case is UUID.Type: return (UUID() as! T, .string)
        case is URL.Type: return (URL(fileURLWithPath: "/") as! T, .string)
        case is Date.Type: return (Date() as! T, .number)
        case is Decimal.Type: return (Decimal() as! T, .number)
        default: return nil
        }
    }

    private static func firstCase<T>(of type: T.Type) -> T? {
        guard let iterable = type as? any CaseIterable.Type else { return nil }
        func first<C: CaseIterable>(_ type: C.Type) -> Any? { type.allCases.first }
        return first(iterable) as? T
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let fields = FieldRecorder(depth: depth)
        shape = .object([:])
        fields.onChange = { [unowned self] in self.shape = .object($0) }
        return KeyedDecodingContainer(KeyedShapeContainer<Key>(fields: fields))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = UnkeyedShapeContainer(depth: depth)
        shape = .array(.unknown)
        container.onElement = { [unowned self] in self.shape = .array($0) }
        return container
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleShapeContainer(depth: depth) { [unowned self] in self.shape = $0 }
    }
}

/// The fields an object's decoder asked for so far.
final class FieldRecorder {
    let depth: Int
    var fields: [String: MessageShape.Field] = [:] { didSet { onChange?(fields) } }
    var onChange: (([String: MessageShape.Field]) -> Void)?
    init(depth: Int) { self.depth = depth }
}

/// Placeholder values of the primitive types, with their shapes.
private func placeholder<T>(_ type: T.Type) -> (value: T, shape: MessageShape)? {
    switch type {
    case is String.Type: return ("" as! T, .string)
    case is Bool.Type: return (false as! T, .boolean)
    case is Double.Type: return (0.0 as! T, .number)
    case is Float.Type: return (Float(0) as! T, .number)
    case is Int.Type: return (0 as! T, .integer)
    case is Int8.Type: return (Int8(0) as! T, .integer)
    case is Int16.Type: return (Int16(0) as! T, .integer)
    case is Int32.Type: return (Int32(0) as! T, .integer)
    case is Int64.Type: return (Int64(0) as! T, .integer)
    case is UInt.Type: return (UInt(0) as! T, .integer)
    case is UInt8.Type: return (UInt8(0) as! T, .integer)
    case is UInt16.Type: return (UInt16(0) as! T, .integer)
    case is UInt32.Type: return (UInt32(0) as! T, .integer)
    case is UInt64.Type: return (UInt64(0) as! T, .integer)
    default: return nil
    }
}

private func sampleAny<T: Decodable>(_ type: T.Type, depth: Int) throws -> (value: T, shape: MessageShape) {
    if let primitive = placeholder(type) { return primitive }
    return try ShapeDecoder.sample(type, depth: depth)
}

private struct KeyedShapeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: FieldRecorder
    var codingPath: [any CodingKey] = []
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decode(generic: type, forKey: key) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? {
        try decodeIfPresent(generic: type, forKey: key)
    }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(generic: type, forKey: key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try decodeIfPresent(generic: type, forKey: key)
    }

    private func decode<T: Decodable>(generic type: T.Type, forKey key: Key) throws -> T {
        let (value, shape) = try sampleAny(type, depth: fields.depth)
        fields.fields[key.stringValue] = MessageShape.Field(shape)
        return value
    }

    private func decodeIfPresent<T: Decodable>(generic type: T.Type, forKey key: Key) throws -> T? {
        let (_, shape) = try sampleAny(type, depth: fields.depth)
        fields.fields[key.stringValue] = MessageShape.Field(shape, required: false)
        return nil
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        throw ShapeDecoder.Unrecordable(reason: "nested containers")
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw ShapeDecoder.Unrecordable(reason: "nested containers")
    }

    func superDecoder() throws -> any Decoder { throw ShapeDecoder.Unrecordable(reason: "super decoders") }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        throw ShapeDecoder.Unrecordable(reason: "super decoders")
    }
}

private final class UnkeyedShapeContainer: UnkeyedDecodingContainer {
    let depth: Int
    var codingPath: [any CodingKey] = []
    var count: Int? { 1 }
    var isAtEnd = false
    var currentIndex = 0
    var onElement: ((MessageShape) -> Void)?

    init(depth: Int) { self.depth = depth }

    func decodeNil() throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decode(generic: type) }
    func decode(_ type: Bool.Type) throws -> Bool { try decode(generic: type) }
    func decode(_ type: String.Type) throws -> String { try decode(generic: type) }
    func decode(_ type: Double.Type) throws -> Double { try decode(generic: type) }
    func decode(_ type: Float.Type) throws -> Float { try decode(generic: type) }
    func decode(_ type: Int.Type) throws -> Int { try decode(generic: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decode(generic: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decode(generic: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decode(generic: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decode(generic: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decode(generic: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(generic: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(generic: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(generic: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(generic: type) }

    private func decode<T: Decodable>(generic type: T.Type) throws -> T {
        let (value, shape) = try sampleAny(type, depth: depth)
        onElement?(shape)
        isAtEnd = true
        currentIndex = 1
        return value
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey>
    {
        throw ShapeDecoder.Unrecordable(reason: "nested containers")
    }

    func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw ShapeDecoder.Unrecordable(reason: "nested containers")
    }

    func superDecoder() throws -> any Decoder { throw ShapeDecoder.Unrecordable(reason: "super decoders") }
}

private struct SingleShapeContainer: SingleValueDecodingContainer {
    let depth: Int
    let record: (MessageShape) -> Void
    var codingPath: [any CodingKey] = []

    init(depth: Int, record: @escaping (MessageShape) -> Void) {
        self.depth = depth
        self.record = record
    }

    func decodeNil() -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decode(generic: type) }
    func decode(_ type: Bool.Type) throws -> Bool { try decode(generic: type) }
    func decode(_ type: String.Type) throws -> String { try decode(generic: type) }
    func decode(_ type: Double.Type) throws -> Double { try decode(generic: type) }
    func decode(_ type: Float.Type) throws -> Float { try decode(generic: type) }
    func decode(_ type: Int.Type) throws -> Int { try decode(generic: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decode(generic: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decode(generic: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decode(generic: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decode(generic: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decode(generic: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(generic: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(generic: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(generic: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(generic: type) }

    private func decode<T: Decodable>(generic type: T.Type) throws -> T {
        let (value, shape) = try sampleAny(type, depth: depth)
        record(shape)
        return value
    }
}
