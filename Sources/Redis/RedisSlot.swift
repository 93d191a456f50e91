// RedisSlot: the Redis Cluster hash slot of a key (CRC16/XMODEM of the key or of its hash tag,
// modulo 16384), and which arguments of a command are keys, for routing.

/// Hash slots and command keys, as Redis Cluster defines them.
public enum RedisSlot {
    /// The number of hash slots of a Redis Cluster.
    public static let count = 16384

    /// The slot of `key`: CRC16 of the text between the first `{` and the next `}` when that
    /// text is not empty (the hash tag), otherwise of the whole key; modulo 16384.
    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { bytes in
            var range = 0..<bytes.count
            if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
                let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
            {
                range = (open + 1)..<close
            }
            var crc: UInt16 = 0
            for index in range {
                crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ bytes[index])]
            }
            return Int(crc & 0x3FFF)
        }
    }

    /// `word` in upper case, without a copy when it already is (Choreo sends upper case).
    static func upper(_ word: String) -> String {
        word.utf8.contains { $0 >= 97 && $0 <= 122 } ? word.uppercased() : word
    }

    /// The CRC16/XMODEM table (polynomial 0x1021, initial 0), the checksum Redis Cluster uses.
    private static let table: [UInt16] = (0..<256).map { index -> UInt16 in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    /// The keys among a command's arguments (`arguments[0]` is the command name), for the
    /// commands Choreo sends; a command absent from the table takes its first argument as its
    /// key, as most Redis commands do. Commands without keys (`PING`, `INFO`, `MULTI` ...) give
    /// none.
    public static func keys(of arguments: [String]) -> [String] {
        guard let first = arguments.first else { return [] }
        let name = upper(first)
        switch name {
        case "PING", "INFO", "MULTI", "EXEC", "DISCARD", "SCRIPT", "CLUSTER", "CLIENT", "ACL", "CONFIG", "DBSIZE",
            "TIME", "FLUSHALL", "FLUSHDB", "KEYS", "SCAN", "WAIT", "WAITAOF", "READONLY", "READWRITE", "ASKING",
            "HELLO", "AUTH", "SELECT", "DEBUG", "ROLE", "COMMAND", "LATENCY", "SLOWLOG", "LASTSAVE", "SAVE",
            "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "MONITOR", "PUBLISH", "ECHO", "QUIT", "RESET", "FUNCTION",
            "MEMORY", "REPLICAOF", "SLAVEOF", "FAILOVER":
            return []
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count > 2, let count = Int(arguments[2]), count > 0, arguments.count >= 3 + count else {
                return []
            }
            return Array(arguments[3..<(3 + count)])
        case "XREAD", "XREADGROUP":
            guard
                let streams = arguments.firstIndex(where: {
                    $0.utf8.count == 7 && ($0 == "STREAMS" || $0.uppercased() == "STREAMS")
                })
            else { return [] }
            let rest = arguments[(streams + 1)...]
            return Array(rest.prefix(rest.count / 2))
        case "XGROUP", "XINFO", "OBJECT":
            // XGROUP CREATE key ..., XINFO GROUPS key, OBJECT ENCODING key.
            return arguments.count > 2 ? [arguments[2]] : []
        case "DEL", "UNLINK", "EXISTS", "TOUCH", "MGET":
            return Array(arguments.dropFirst())
        case "RENAME", "RENAMENX", "COPY":
            return Array(arguments.dropFirst().prefix(2))
        case "MSET":
            return stride(from: 1, to: arguments.count, by: 2).map { arguments[$0] }
        default:
            return arguments.count > 1 ? [arguments[1]] : []
        }
    }
}
