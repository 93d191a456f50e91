// JSONText: fast JSON helpers for the hot path: a syntax validator and a string-array encoder
// (Foundation's JSONSerialization costs several microseconds per call on Linux).

/// Minimal, allocation-free JSON helpers.
public enum JSONText {
    /// Whether `text` is one syntactically valid JSON value (RFC 8259), with nesting up to 256.
    public static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            var parser = Validator(bytes: bytes)
            parser.skipSpace()
            guard parser.value(depth: 0) else { return false }
            parser.skipSpace()
            return parser.index == bytes.count
        }
    }

    /// Encodes strings as a JSON array of strings: `["a","b\"c"]`.
    public static func array(_ strings: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(strings.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, string) in strings.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendQuoted(string, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `string` as a quoted JSON string.
    public static func appendQuoted(_ string: String, to out: inout [UInt8]) {
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
                default:
                    out.append(117)
                    out.append(48)
                    out.append(48)
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 15))
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

    /// Decodes a JSON array of strings produced by ``array(_:)``; nil if it is not one.
    public static func decodeArray(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { bytes -> [String]? in
            var index = 0
            func skip() { while index < bytes.count, [32, 9, 10, 13].contains(bytes[index]) { index += 1 } }
            skip()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { return nil }
            index += 1
            var result: [String] = []
            skip()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { return result }
            while index < bytes.count {
                skip()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
                index += 1
                var value: [UInt8] = []
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == 92, index + 1 < bytes.count {
                        index += 1
                        switch bytes[index] {
                        case UInt8(ascii: "n"): value.append(10)
                        case UInt8(ascii: "r"): value.append(13)
                        case UInt8(ascii: "t"): value.append(9)
                        case UInt8(ascii: "b"): value.append(8)
                        case UInt8(ascii: "f"): value.append(12)
                        case UInt8(ascii: "u"):
                            guard index + 4 < bytes.count,
                                let code = UInt32(
                                    String(decoding: bytes[(index + 1)...(index + 4)], as: UTF8.self), radix: 16),
                                let scalar = Unicode.Scalar(code)
                            else { return nil }
                            value += Array(String(Character(scalar)).utf8)
                            index += 4
                        default: value.append(bytes[index])
                        }
                    } else {
                        value.append(bytes[index])
                    }
                    index += 1
                }
                guard index < bytes.count else { return nil }
                index += 1
                result.append(String(decoding: value, as: UTF8.self))
                skip()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: "]") { return result }
                guard bytes[index] == UInt8(ascii: ",") else { return nil }
                index += 1
            }
            return nil
        }
    }

    private struct Validator {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 32 || byte == 9 || byte == 10 || byte == 13 { index += 1 }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
            index += count
            return true
        }

        mutating func value(depth: Int) -> Bool {
            guard depth < 256, let byte = current else { return false }
            switch byte {
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "}") {
                    index += 1
                    return true
                }
                while true {
                    skipSpace()
                    guard current == UInt8(ascii: "\""), string() else { return false }
                    skipSpace()
                    guard current == UInt8(ascii: ":") else { return false }
                    index += 1
                    skipSpace()
                    guard value(depth: depth + 1) else { return false }
                    skipSpace()
                    if current == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    guard current == UInt8(ascii: "}") else { return false }
                    index += 1
                    return true
                }
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "]") {
                    index += 1
                    return true
                }
                while true {
                    skipSpace()
                    guard value(depth: depth + 1) else { return false }
                    skipSpace()
                    if current == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    guard current == UInt8(ascii: "]") else { return false }
                    index += 1
                    return true
                }
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }

        mutating func string() -> Bool {
            index += 1
            while let byte = current {
                index += 1
                if byte == UInt8(ascii: "\"") { return true }
                if byte < 32 { return false }
                if byte == 92 {
                    guard let escaped = current else { return false }
                    index += 1
                    if escaped == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            guard let hex = current,
                                (48...57).contains(hex) || (65...70).contains(hex) || (97...102).contains(hex)
                            else { return false }
                            index += 1
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(escaped) {
                        return false
                    }
                }
            }
            return false
        }

        mutating func digits() -> Bool {
            let start = index
            while let byte = current, (48...57).contains(byte) { index += 1 }
            return index > start
        }

        mutating func number() -> Bool {
            if current == UInt8(ascii: "-") { index += 1 }
            if current == UInt8(ascii: "0") {
                index += 1
            } else if !digits() {
                return false
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard digits() else { return false }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard digits() else { return false }
            }
            return true
        }
    }
}
