// RedisACL: least-privilege Redis users derived from the topology: each service may touch only
// its own streams, the streams it consumes and publishes, its heartbeats and the results; the
// gateway only the commands streams, results, command records, idempotency and rate-limit keys,
// and heartbeats (never a dead stream). `choreo acl` prints or applies them.

import Choreo
import Foundation
import Redis

/// Redis ACL rules (the arguments of `ACL SETUSER name ...` after the name and password).
public enum RedisACL {
    /// The environment variable with the gateway's own Redis URL.
    public static let gatewayURLVariable = "REDIS_URL_GATEWAY"

    /// Commands every Choreo connection needs.
    static let base = [
        "+ping", "+select", "+auth", "+hello", "+client|setname", "+info",
        // On a Redis Cluster: the slot map and the redirections of a slot migration.
        "+cluster|slots", "+asking",
    ]

    /// The rules of a service's worker user.
    public static func serviceRules(_ service: ServiceDefinition, topology: Topology) -> [String] {
        var keys = topology.keys(of: service.commandStream) + topology.keys(of: service.eventStream)
        keys += [service.deadStream, Topology.resultsStream]
        keys += service.subscribes.flatMap(topology.keys(of:)) + service.publishes
        keys += ["choreo:command:*", Topology.workersKey(service.name)]
        // The leases of the partitions it consumes (its group's only) and the partition-count
        // records, in a selector of their own: SET on any other key could replace a stream.
        let partitioned = ([service.commandStream, service.eventStream] + service.subscribes).filter {
            topology.partitioning(of: $0) != nil
        }
        let consumedPartitions = ([service.commandStream] + service.subscribes).filter {
            topology.partitioning(of: $0) != nil
        }
        let leases =
            consumedPartitions.flatMap(topology.keys(of:)).map {
                PartitionLease.key(partition: $0, group: service.name)
            }
            + partitioned.map(PartitionLayout.key)
        // A partitioned stream as a whole: read when its partition count is checked.
        let wholes = partitioned.map { "%R~" + $0 }
        for target in topology.services where service.publishes.contains(target.commandStream) {
            keys += topology.keys(of: target.commandStream)
        }
        var unique: [String] = []
        for key in keys where !unique.contains(key) { unique.append(key) }
        return unique.map { "~" + $0 } + wholes + base + [
            "+xreadgroup", "+xack", "+xadd", "+xclaim", "+xautoclaim", "+xpending", "+xgroup|create",
            "+xgroup|delconsumer", "+xinfo|groups", "+xinfo|consumers", "+xinfo|stream", "+xlen", "+xrange",
            "+xrevrange", "+xtrim", "+exists", "+eval", "+hset", "+hdel", "+hgetall", "+expire", "+multi", "+exec",
        ]
            + (leases.isEmpty
                ? [] : ["(" + leases.map { "~" + $0 }.joined(separator: " ") + " +get +set +pexpire +del +eval)"])
    }

    /// The rules of the gateway's user.
    public static func gatewayRules(_ topology: Topology) -> [String] {
        let keys =
            topology.services.flatMap { topology.keys(of: $0.commandStream) } + [
                Topology.resultsStream, "choreo:command:*", "choreo:idempotency:*", "choreo:ratelimit:*",
                "choreo:workers:*",
            ]
        // The events streams read-only: their backlog holds back commands (backpressure).
        let readOnly = topology.services.flatMap { topology.keys(of: $0.eventStream) }.map { "%R~" + $0 }
        return keys.map { "~" + $0 } + readOnly + base + [
            "+evalsha", "+eval", "+script|load", "+xadd", "+xread", "+xinfo|groups", "+xinfo|stream", "+xlen",
            "+exists",
            "+hgetall", "+hget", "+hmget", "+hset", "+expire", "+time", "+get", "+set", "+multi", "+exec",
            // Query replies are deleted once read: DEL on command records only (a selector).
            "(~choreo:command:* +del)",
        ]
    }

    /// `ACL SETUSER user reset on >password rules...`: replaces the user's rules, on every node
    /// of a Redis Cluster (masters and replicas: each keeps its own users, and a replica
    /// promoted by a failover must know them).
    public static func apply(user: String, password: String, rules: [String], on redis: RedisConnection) throws {
        for (endpoint, reply) in try redis.onEveryNode(
            ["ACL", "SETUSER", user, "reset", "on", ">" + password] + rules, replicas: true)
        {
            if let error = reply.errorMessage {
                throw RedisError.server(command: "ACL SETUSER", message: "\(endpoint): \(error)")
            }
        }
    }

    /// The user and password of a `redis://user:password@host` URL.
    public static func credentials(_ url: String) throws -> (user: String, password: String) {
        let configuration = try RedisConfiguration(url: url)
        guard let user = configuration.username, !user.isEmpty, user != "default", let password = configuration.password
        else {
            throw RedisError.server(
                command: "ACL",
                message: "the URL \(configuration) names no ACL user and password (redis://user:password@host)")
        }
        return (user, password)
    }
}
