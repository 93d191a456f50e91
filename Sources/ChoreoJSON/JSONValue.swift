// JSONValue: a parsed JSON document that keeps booleans, integers, decimals and strings apart,
// so request validation can reject rather than coerce.

import Foundation

/// A JSON value.
public indirect enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON data (see ``JSONReader`` for the rules).
    public static func parse(_ data: Data) throws(JSONError) -> JSONValue {
        let result = data.withUnsafeBytes { bytes in Result { () throws(JSONError) in try parse(bytes: bytes) } }
        return try result.get()
    }

    /// Parses JSON text.
    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        var text = text
        let result = text.withUTF8 { bytes in
            Result { () throws(JSONError) in try JSONReader<BuildingMode>.parse(bytes) }
        }
        return try result.get()
    }

    /// Parses JSON from raw bytes (invalid UTF-8 is refused).
    public static func parse(bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        try JSONReader<BuildingMode>.parse(bytes.bindMemory(to: UInt8.self))
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Compact JSON text with sorted keys.
    public var text: String { JSONWriter.text(self) }

    /// A name for the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer: return "integer"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}
