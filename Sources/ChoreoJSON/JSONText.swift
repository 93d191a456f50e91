// JSONText: the JSON entry points the runtime and the gateway use on their hot paths (validate
// a payload, encode and decode a string array, quote a string), all on the one grammar
// (JSONReader) and the one escaper (JSONWriter) of this module.

/// JSON helpers without Foundation's per-call costs.
public enum JSONText {
    /// Whether `text` is one syntactically valid JSON value (RFC 8259), nesting up to 256.
    /// Allocates nothing for text without escapes.
    public static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { JSONReader<ValidatingMode>.isValid($0, knownUTF8: true) }
    }

    /// Whether `bytes` are one JSON value (raw bytes need not be UTF-8: invalid UTF-8 is
    /// refused).
    public static func isValid(bytes: UnsafeRawBufferPointer) -> Bool {
        JSONReader<ValidatingMode>.isValid(bytes.bindMemory(to: UInt8.self))
    }

    /// Encodes strings as a JSON array of strings: `["a","b\"c"]`.
    public static func array(_ strings: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(strings.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, string) in strings.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendQuoted(string, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `string` as a quoted JSON string.
    public static func appendQuoted(_ string: String, to out: inout [UInt8]) {
        JSONWriter.appendQuoted(string, to: &out)
    }

    /// Decodes a JSON array of strings (as ``array(_:)`` writes); nil if `text` is not one.
    public static func decodeArray(_ text: String) -> [String]? {
        guard case .array(let elements) = try? JSONValue.parse(text) else { return nil }
        var strings: [String] = []
        strings.reserveCapacity(elements.count)
        for element in elements {
            guard case .string(let string) = element else { return nil }
            strings.append(string)
        }
        return strings
    }
}
