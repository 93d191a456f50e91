// JSONReader: the one JSON grammar of the package (RFC 8259), by hand: Foundation's
// JSONDecoder through Codable cost about a seventh of a submit's CPU. It builds a JSONValue, or
// only validates (no allocation: the envelope's payload check on every message).

/// Why a text is not the JSON wanted.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// For a person: what is wrong.
    public var reason: String

    /// Creates an error.
    public init(reason: String = "the body is not valid JSON") { self.reason = reason }

    public var description: String { reason }
}

/// A strict RFC 8259 parser into ``JSONValue``: integers without a fraction or exponent that
/// fit 64 bits stay integers, every other number is a finite double; strings must be valid
/// UTF-8 without raw control characters (NUL included); nesting is capped at
/// ``JSONReader/maxDepth``; an object may not repeat a key (which copy counts would be up to
/// each reader, and the gateway forwards the body as sent). In validating mode the same
/// grammar runs without building values (duplicate keys are then not looked for).
/// Whether a reader builds values; a type, so each mode is its own specialization (the
/// validating one with the building code removed).
protocol JSONReaderMode {
    static var building: Bool { get }
}

/// Builds ``JSONValue``s.
enum BuildingMode: JSONReaderMode {
    static var building: Bool { true }
}

/// Checks syntax only.
enum ValidatingMode: JSONReaderMode {
    static var building: Bool { false }
}

struct JSONReader<Mode: JSONReaderMode> {
    typealias Failure = JSONError

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    /// Whether values are built (false: syntax only).
    private var building: Bool { Mode.building }
    /// Whether the bytes are known to be UTF-8 (a Swift string's): then not checked again.
    private let knownUTF8: Bool
    /// The deepest nesting accepted (arrays and objects inside each other).
    static var maxDepth: Int { 256 }

    private init(_ bytes: UnsafeBufferPointer<UInt8>, knownUTF8: Bool = false) {
        self.bytes = bytes
        self.knownUTF8 = knownUTF8
    }

    /// Parses one JSON value filling all of `bytes` (surrounding whitespace allowed).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> JSONValue {
        var reader = JSONReader<BuildingMode>(bytes)
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.index == bytes.count else { throw Failure() }
        return value
    }

    /// Whether `bytes` are one JSON value (the same grammar, nothing built). `knownUTF8`: the
    /// bytes are a Swift string's, so their encoding needs no check.
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>, knownUTF8: Bool = false) -> Bool {
        var reader = JSONReader<ValidatingMode>(bytes, knownUTF8: knownUTF8)
        reader.skipSpace()
        guard (try? reader.value(depth: 0)) != nil else { return false }
        reader.skipSpace()
        return reader.index == bytes.count
    }

    @inline(__always) private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    @inline(__always) private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 32, 9, 10, 13: index += 1
            default: return
            }
        }
    }

    @inline(__always) private mutating func expect(_ byte: UInt8) throws(Failure) {
        guard current == byte else { throw Failure() }
        index += 1
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw Failure() }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw Failure() }
        index += count
    }

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard depth < Self.maxDepth, let byte = current else { throw Failure() }
        switch byte {
        case UInt8(ascii: "{"):
            index += 1
            // Nothing is collected when validating (no allocation, no reference counting).
            var object: [String: JSONValue]? = building ? [:] : nil
            skipSpace()
            if current == UInt8(ascii: "}") {
                index += 1
                return object.map(JSONValue.object) ?? .null
            }
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                let member = try value(depth: depth + 1)
                if let key, object?.updateValue(member, forKey: key) != nil {
                    throw Failure(reason: "the body repeats a key: '\(key.prefix(100))' appears twice in one object")
                }
                skipSpace()
                if current == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return object.map(JSONValue.object) ?? .null
            }
        case UInt8(ascii: "["):
            index += 1
            var array: [JSONValue]? = building ? [] : nil
            skipSpace()
            if current == UInt8(ascii: "]") {
                index += 1
                return array.map(JSONValue.array) ?? .null
            }
            while true {
                skipSpace()
                let element = try value(depth: depth + 1)
                array?.append(element)
                skipSpace()
                if current == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return array.map(JSONValue.array) ?? .null
            }
        case UInt8(ascii: "\""):
            return try string().map(JSONValue.string) ?? .null
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            return try number()
        }
    }

    @inline(__always) private mutating func digits() throws(Failure) {
        let start = index
        while let byte = current, byte >= 48, byte <= 57 { index += 1 }
        guard index > start else { throw Failure() }
    }

    private mutating func number() throws(Failure) -> JSONValue {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, first >= 48, first <= 57 else { throw Failure() }
        if first == 48 {
            index += 1
        } else {
            try digits()
        }
        var integral = true
        if current == UInt8(ascii: ".") {
            index += 1
            try digits()
            integral = false
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            try digits()
            integral = false
        }
        // Validating, a short integer needs no conversion; anything else is converted as when
        // building, so both modes refuse the same texts (a number beyond a double's range).
        if !building, integral, index - start <= 18 { return .null }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int64(text) { return building ? .integer(value) : .null }
        guard let value = Double(text), value.isFinite else { throw Failure() }
        return building ? .number(value) : .null
    }

    private mutating func hexQuad() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw Failure() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case 48...57: digit = UInt32(byte - 48)
            case 65...70: digit = UInt32(byte - 55)
            case 97...102: digit = UInt32(byte - 87)
            default: throw Failure()
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// Checks `raw` is UTF-8 without building a string (validating mode: nil).
    private func validUTF8(_ raw: UnsafeBufferPointer<UInt8>) throws(Failure) -> String? {
        // ASCII is the common case; only text with a non-ASCII byte needs the decoder.
        guard raw.contains(where: { $0 >= 0x80 }) else { return nil }
        var iterator = raw.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return nil
            case .error: throw Failure()
            }
        }
    }

    /// A string; nil when validating (nothing is built).
    private mutating func string() throws(Failure) -> String? {
        try expect(UInt8(ascii: "\""))
        let start = index
        // Fast path: no escapes.
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 32 else { throw Failure() }
            index += 1
        }
        if current == UInt8(ascii: "\"") {
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
            index += 1
            guard building else { return knownUTF8 ? nil : try validUTF8(raw) }
            guard let text = String(validating: raw, as: UTF8.self) else { throw Failure() }
            return text
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard let byte = current else { throw Failure() }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw Failure() }
                return text
            case UInt8(ascii: "\\"):
                guard let escaped = current else { throw Failure() }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "u"):
                    var scalar = try hexQuad()
                    if (0xD800...0xDBFF).contains(scalar) {
                        try expect(UInt8(ascii: "\\"))
                        try expect(UInt8(ascii: "u"))
                        let low = try hexQuad()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Failure() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw Failure() }
                    out.append(contentsOf: Array(String(unicode).utf8))
                default:
                    throw Failure()
                }
            default:
                guard byte >= 32 else { throw Failure() }
                out.append(byte)
            }
        }
    }
}
