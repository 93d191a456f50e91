// PartitionLease: one consumer's exclusive right to read one partition for its group, leased
// in Redis (`SET NX PX`, renewed with compare-and-expire, released with compare-and-delete) in
// the partition's own slot.

import Foundation
import Redis

/// The lease of partition `key` for consumer group `group`, as seen by `consumer`.
///
/// The lease is the string key `choreo:lease:{tag}:group` (in the partition stream's slot),
/// holding the owner's consumer name and expiring after ``ttl`` unless renewed. A consumer
/// reads a partition only while it holds the lease, so a key's messages are handled by one
/// consumer at a time, in order; a dead owner's lease expires and another consumer takes the
/// partition over.
public struct PartitionLease {
    /// The partition's stream key, e.g. `{orders#p3}.events`.
    let partition: String
    /// The consumer group (the consuming service).
    let group: String
    /// This consumer's name (the lease's value while it owns it).
    let consumer: String
    /// How long a lease lasts without renewal, in seconds (the service's claim_idle).
    let ttl: Double

    /// The lease's Redis key.
    var key: String { Self.key(partition: partition, group: group) }

    /// The lease key of `partition` for `group`: `choreo:lease:{orders#p3}.events:payments`.
    public static func key(partition: String, group: String) -> String { "choreo:lease:\(partition):\(group)" }

    private var milliseconds: String { String(max(1, Int(ttl * 1000))) }

    /// Takes the lease if nobody holds it; true if this consumer holds it now.
    func acquire(_ redis: RedisConnection) throws -> Bool {
        let reply = try redis.command(["SET", key, consumer, "NX", "PX", milliseconds])
        if reply.string == "OK" { return true }
        // Ours already (a renewal whose reply was lost): keep it.
        return try renew(redis)
    }

    /// Extends the lease if this consumer still holds it; false when it was lost (expired and
    /// taken by another consumer, or deleted).
    func renew(_ redis: RedisConnection) throws -> Bool {
        try redis.command(["EVAL", Self.renewScript, "1", key, consumer, milliseconds]).int == 1
    }

    /// Gives the lease up if this consumer holds it.
    func release(_ redis: RedisConnection) throws {
        try redis.command(["EVAL", Self.releaseScript, "1", key, consumer])
    }

    /// The current owner's consumer name, if any.
    static func owner(partition: String, group: String, redis: RedisConnection) throws -> String? {
        try redis.command(["GET", key(partition: partition, group: group)]).string
    }

    /// KEYS: the lease; ARGV: the consumer, the ttl in ms.
    static let renewScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """

    /// KEYS: the lease; ARGV: the consumer.
    static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """
}
