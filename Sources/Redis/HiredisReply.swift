// HiredisReply: reading hiredis reply trees into Swift values: any reply into a RedisReply
// (a deep copy), and an XREADGROUP/XREAD reply straight into stream batches. The caller owns and
// frees the tree.

import CHiredis

/// Conversions of hiredis `redisReply` trees.
enum HiredisReply {
    /// Parses an XREADGROUP/XREAD reply into stream batches.
    static func streamBatches(_ reply: UnsafeMutablePointer<redisReply>, command: String) throws -> [StreamBatch] {
        if reply.pointee.type == REDIS_REPLY_ERROR {
            throw RedisError.server(command: command, message: reply.pointee.str.map { String(cString: $0) } ?? "")
        }
        guard reply.pointee.type == REDIS_REPLY_ARRAY else { return [] }
        func text(_ element: UnsafeMutablePointer<redisReply>?) -> String? {
            guard let element, element.pointee.type == REDIS_REPLY_STRING || element.pointee.type == REDIS_REPLY_STATUS,
                let str = element.pointee.str
            else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: element.pointee.len), as: UTF8.self)
        }
        var batches: [StreamBatch] = []
        for streamIndex in 0..<reply.pointee.elements {
            guard let pair = reply.pointee.element[streamIndex], pair.pointee.elements == 2,
                let key = text(pair.pointee.element[0]), let list = pair.pointee.element[1]
            else { continue }
            var entries: [StreamEntry] = []
            entries.reserveCapacity(list.pointee.elements)
            for entryIndex in 0..<list.pointee.elements {
                guard let item = list.pointee.element[entryIndex], item.pointee.elements == 2,
                    let id = text(item.pointee.element[0])
                else { continue }
                guard let flat = item.pointee.element[1], flat.pointee.type == REDIS_REPLY_ARRAY else {
                    entries.append(StreamEntry(id: id, fields: [], isDeleted: true))
                    continue
                }
                var fields: [StreamField] = []
                fields.reserveCapacity(flat.pointee.elements / 2)
                var index = 0
                while index + 1 < flat.pointee.elements {
                    fields.append(
                        StreamField(
                            text(flat.pointee.element[index]) ?? "", text(flat.pointee.element[index + 1]) ?? ""))
                    index += 2
                }
                entries.append(StreamEntry(id: id, fields: fields))
            }
            batches.append(StreamBatch(stream: key, entries: entries))
        }
        return batches
    }

    /// Deep-copies a hiredis reply tree into Swift values (the caller frees the tree).
    static func value(_ pointer: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = pointer.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            guard let str = reply.str else { return .bulk([]) }
            return .bulk(Array(UnsafeRawBufferPointer(start: str, count: reply.len)))
        case REDIS_REPLY_STATUS:
            return .status(reply.str.map { String(cString: $0) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(reply.str.map { String(cString: $0) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(reply.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = reply.element[index] {
                    elements.append(value(element))
                } else {
                    elements.append(.null)
                }
            }
            return .array(elements)
        default:
            return .null
        }
    }
}
