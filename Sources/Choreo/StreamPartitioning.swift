// StreamPartitioning: how a partitioned events stream is split: its partition count, the
// payload field whose value picks a message's partition, the partitions' Redis keys (each with
// a hash tag of its own, so a cluster spreads them over its slots) and the hash that maps a key
// to a partition.

import ChoreoJSON
import Foundation
import Redis

/// The partitions of one stream (`events: {partitions: 8, key: orderId}` in streams.yml).
///
/// A message goes to partition `fnv1a32(key) mod count`, where the key is the value of the
/// payload field ``keyField`` (a string, or an integer's decimal text), or the message's
/// correlation id when ``keyField`` is `nil` or the payload has no such field. Every message of
/// one key lands in one partition, in publish order, and a partition is consumed by one
/// consumer of a group at a time (``PartitionLease``), so a key's messages are handled in order.
public struct StreamPartitioning: Sendable, Equatable {
    /// The stream's key as a whole, e.g. `{orders}.events` (no entries are written to it).
    public var stream: String
    /// How many partitions (1 to ``maximumCount``).
    public var count: Int
    /// The payload field holding the key; `nil` means the correlation id.
    public var keyField: String?

    /// The most partitions a stream may have.
    public static let maximumCount = 1024

    /// Creates a partitioning of `stream` into `count` partitions keyed by `keyField`.
    public init(stream: String, count: Int, keyField: String? = nil) {
        self.stream = stream
        self.count = count
        self.keyField = keyField
    }

    /// The Redis key of partition `index`: the stream's hash tag with `#p<index>` appended,
    /// `{orders}.events` -> `{orders#p3}.events`. Service names cannot contain `#`, so a
    /// partition never collides with another service's keys.
    public func key(_ index: Int) -> String { Self.key(of: stream, index) }

    /// Every partition's key, in partition order.
    public var keys: [String] { (0..<count).map(key) }

    /// The Redis key of partition `index` of `stream`.
    public static func key(of stream: String, _ index: Int) -> String {
        guard stream.hasPrefix("{"), let close = stream.firstIndex(of: "}") else { return "{\(stream)#p\(index)}" }
        return String(stream[..<close]) + "#p\(index)" + String(stream[close...])
    }

    /// The partition of `stream`'s key `partitionKey` (e.g. `{orders#p3}.events` -> 3), or nil.
    public func index(ofKey partitionKey: String) -> Int? {
        guard let hash = partitionKey.range(of: "#p"), let close = partitionKey[hash.upperBound...].firstIndex(of: "}"),
            let index = Int(partitionKey[hash.upperBound..<close]), (0..<count).contains(index),
            key(index) == partitionKey
        else { return nil }
        return index
    }

    /// The partition for a message with payload `data` and correlation id `correlation`.
    public func partition(data: String, correlation: String) -> Int {
        Self.partition(of: routingKey(data: data, correlation: correlation), count: count)
    }

    /// The partition key of the message with stream fields `fields` (its `data` and
    /// `correlation`, or its `id` when it has no correlation).
    public func key(for fields: [StreamField]) -> String {
        var data = "{}"
        var correlation: String?
        var id = ""
        for field in fields {
            switch field.name {
            case "data": data = field.value
            case "correlation": correlation = correlation ?? field.value
            case "id": id = field.value
            default: break
            }
        }
        return key(partition(data: data, correlation: correlation ?? id))
    }

    /// The value a message is routed by: its ``keyField``'s value, else the correlation id.
    public func routingKey(data: String, correlation: String) -> String {
        guard let keyField, let value = Self.field(keyField, in: data) else { return correlation }
        return value
    }

    /// `fnv1a32(key) mod count`: stable across processes, versions and languages (FNV-1a, 32
    /// bits, over the key's UTF-8 bytes).
    public static func partition(of key: String, count: Int) -> Int {
        guard count > 1 else { return 0 }
        var hash: UInt32 = 2_166_136_261
        for byte in key.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return Int(hash % UInt32(count))
    }

    /// The text of top-level field `name` of a JSON object: a string's value, an integer's
    /// decimal digits; nil when absent, of another type, or the payload is not an object.
    static func field(_ name: String, in data: String) -> String? {
        guard data.utf8.contains(UInt8(ascii: "{")), case .object(let fields)? = try? JSONValue.parse(data) else {
            return nil
        }
        switch fields[name] {
        case .string(let value): return value
        case .integer(let value): return String(value)
        default: return nil
        }
    }
}
