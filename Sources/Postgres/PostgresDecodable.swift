// PostgresDecodable: how text-format result values become Swift values.

import Foundation

/// A Swift type that can be read from a result column in Postgres's text output format.
public protocol PostgresDecodable {
    /// Parses the server's text output for this type; throws ``PostgresError`` (kind
    /// `.decoding`) when the text is not a valid value.
    init(postgresText text: String) throws
}

func decodingError(_ text: String, _ type: String) -> PostgresError {
    PostgresError(.decoding, message: "'\(text.prefix(80))' is not a valid \(type)")
}

extension String: PostgresDecodable {
    public init(postgresText text: String) { self = text }
}

extension Int: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = Int(text) else { throw decodingError(text, "Int") }
        self = value
    }
}

extension Int32: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = Int32(text) else { throw decodingError(text, "Int32") }
        self = value
    }
}

extension Int64: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = Int64(text) else { throw decodingError(text, "Int64") }
        self = value
    }
}

extension Double: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = Double(text) else { throw decodingError(text, "Double") }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(postgresText text: String) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw decodingError(text, "Bool")
        }
    }
}

extension UUID: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = UUID(uuidString: text) else { throw decodingError(text, "UUID") }
        self = value
    }
}

extension Date: PostgresDecodable {
    /// Parses `timestamptz` output (`2026-11-29 17:45:37.123456+00`, any offset) and
    /// `timestamp` output (taken as UTC).
    public init(postgresText text: String) throws {
        let bytes = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[start..<start + count] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 19, let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { throw decodingError(text, "timestamp") }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offset = 0
        if index < bytes.count {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard let hours = number(index + 1, 2) else { throw decodingError(text, "timestamp") }
            var minutes = 0
            if index + 3 < bytes.count, bytes[index + 3] == UInt8(ascii: ":") { minutes = number(index + 4, 2) ?? 0 }
            offset = sign * (hours * 3600 + minutes * 60)
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = timegm(&parts)
        self = Date(timeIntervalSince1970: Double(epoch - offset) + fraction)
    }
}

extension PostgresBytes: PostgresDecodable {
    /// Parses `bytea` hex output (`\x0a0b`).
    public init(postgresText text: String) throws {
        guard text.hasPrefix("\\x") else { throw decodingError(text, "bytea (hex)") }
        let hex = Array(text.utf8.dropFirst(2))
        guard hex.count % 2 == 0 else { throw decodingError(text, "bytea (hex)") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var index = 0
        while index < hex.count {
            guard let value = UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16) else {
                throw decodingError(text, "bytea (hex)")
            }
            bytes.append(value)
            index += 2
        }
        self.init(bytes)
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Parses a one-dimensional array literal such as `{1,2,3}` or `{"a b",NULL}` (NULL
    /// elements are an error: decode `[String?]`-shaped data as text instead).
    public init(postgresText text: String) throws {
        let characters = [Character](text)
        guard characters.first == "{", characters.last == "}" else { throw decodingError(text, "array") }
        var elements: [Element] = []
        var index = 1
        let end = characters.count - 1
        while index < end {
            var item = ""
            var quoted = false
            if characters[index] == "\"" {
                quoted = true
                index += 1
                while index < end, characters[index] != "\"" {
                    if characters[index] == "\\", index + 1 < end { index += 1 }
                    item.append(characters[index])
                    index += 1
                }
                index += 1
            } else {
                while index < end, characters[index] != "," {
                    item.append(characters[index])
                    index += 1
                }
            }
            if !quoted && item == "NULL" { throw decodingError(text, "array without NULLs") }
            elements.append(try Element(postgresText: item))
            index += 1
        }
        self = elements
    }
}
