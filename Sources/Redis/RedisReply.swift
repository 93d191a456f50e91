// RedisReply: a Swift value for every RESP2 reply, deep-copied out of hiredis's reply tree.

/// One reply from the Redis server, covering every RESP2 type.
///
/// hiredis 0.14 speaks RESP2 only: a null bulk string and a null array both arrive as ``null``
/// (a timed-out `XREADGROUP ... BLOCK` answers ``null``).
public enum RedisReply: Sendable, Hashable {
    /// A simple string such as `OK` or `QUEUED`.
    case status(String)
    /// An error reply such as `NOSCRIPT No matching script`; not thrown when it sits inside
    /// a pipeline or a transaction, so that each reply can be inspected.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string, kept as bytes so that binary values survive untouched.
    case bulk([UInt8])
    /// A null bulk string or a null array.
    case null
    /// An array, possibly nested.
    indirect case array([RedisReply])

    /// The reply as text: a bulk string decoded as UTF-8, a status, or an integer's digits.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// The reply as an integer: an integer reply, or a bulk/status string holding digits.
    public var int: Int? {
        switch self {
        case .integer(let value): return Int(value)
        case .bulk, .status: return string.flatMap { Int($0) }
        default: return nil
        }
    }

    /// The elements of an array reply; `nil` for any other reply (including ``null``).
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is the ``null`` reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The error text when this is an ``error(_:)`` reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// A flat `[key, value, key, value]` array read as a dictionary of text values
    /// (the shape of `XINFO` and `HGETALL` replies). Nested values are skipped.
    public var fieldMap: [String: RedisReply] {
        guard let elements = array else { return [:] }
        var map: [String: RedisReply] = [:]
        var index = 0
        while index + 1 < elements.count {
            if let key = elements[index].string { map[key] = elements[index + 1] }
            index += 2
        }
        return map
    }
}

extension RedisReply: CustomStringConvertible {
    /// A redis-cli-like rendering, for logs and error messages.
    public var description: String {
        switch self {
        case .status(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .bulk: return "\"\(string ?? "")\""
        case .null: return "(nil)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
