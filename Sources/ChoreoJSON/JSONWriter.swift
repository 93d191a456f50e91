// JSONWriter: JSON text by hand (Foundation's JSONEncoder through Codable cost several
// microseconds per request body): a JSONValue as compact text with sorted keys, and the one
// string escaper of the package.

/// Writes a ``JSONValue`` as compact JSON with object keys sorted (by their UTF-8 bytes), so
/// equal documents have equal text.
enum JSONWriter {
    static func text(_ value: JSONValue) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func write(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .integer(let number): out.append(contentsOf: String(number).utf8)
        case .number(let number): out.append(contentsOf: "\(number)".utf8)
        case .string(let string): appendQuoted(string, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                write(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (position, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
                .enumerated()
            {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                appendQuoted(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Appends `string` as a quoted JSON string: `"`, `\\` and control characters escaped
    /// (`\\n`, `\\r`, `\\t`, `\\b`, `\\f`, else `\\u00XX`), everything else as its UTF-8
    /// bytes, copied in runs.
    static func appendQuoted(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var clean = 0
            for (index, byte) in bytes.enumerated() where byte < 32 || byte == 34 || byte == 92 {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean..<index]))
                out.append(92)
                switch byte {
                case 34: out.append(34)
                case 92: out.append(92)
                case 10: out.append(110)
                case 13: out.append(114)
                case 9: out.append(116)
                case 8: out.append(98)
                case 12: out.append(102)
                default:
                    out.append(contentsOf: [117, 48, 48, hexDigit(byte >> 4), hexDigit(byte & 15)])
                }
                clean = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? 48 + value : 87 + value
    }
}
