// RedisKeyLayout: moves the keys of the layout before hash tags (`users.events`,
// `choreo:workers:users`, `choreo:idempotency:[principal:]users:key`) to the hash-tagged layout
// (`{users}.events`, `choreo:workers:{users}`, `choreo:idempotency:{users}:[principal:]key`).
// Run by `choreo migrate` while no worker or gateway of the old version runs; idempotent.

import Redis

/// The one-off move of a Redis from the untagged key layout to the hash-tagged one.
public enum RedisKeyLayout {
    /// Renames every old-layout key of `topology`'s services that exists; returns one line per
    /// key moved. `RENAME` keeps a stream's entries, consumer groups and pending entries, and a
    /// key's TTL. Throws (moving nothing more) when a key exists under both names: the operator
    /// must decide which stream to keep.
    public static func migrate(_ topology: Topology, redis: RedisConnection) throws -> [String] {
        var moved: [String] = []
        func rename(_ old: String, _ new: String) throws {
            guard try redis.command(["EXISTS", old]).int == 1 else { return }
            if try redis.command(["EXISTS", new]).int == 1 {
                throw RedisError.server(
                    command: "RENAME",
                    message:
                        "both '\(old)' (old layout) and '\(new)' exist: stop every process, then keep one "
                        + "(e.g. replay the old stream's entries into the new one) and delete the other")
            }
            try redis.command(["RENAME", old, new])
            moved.append("\(old) -> \(new)")
        }
        let names = Set(topology.services.map(\.name))
        for service in topology.services {
            try rename("\(service.name).commands", service.commandStream)
            try rename("\(service.name).events", service.eventStream)
            try rename("\(service.name).dead", service.deadStream)
            // Heartbeats are rewritten every second: the old hash is only dropped.
            try redis.command(["DEL", "choreo:workers:\(service.name)"])
        }
        // Idempotency records: `choreo:idempotency:[principal:]service:key` (no hash tag).
        guard !redis.isCluster else { return moved }
        var cursor = "0"
        repeat {
            let reply = try redis.command(["SCAN", cursor, "MATCH", "choreo:idempotency:*", "COUNT", "1000"])
            guard let parts = reply.array, parts.count == 2 else { break }
            cursor = parts[0].string ?? "0"
            for key in (parts[1].array ?? []).compactMap(\.string) where !key.contains("{") {
                let rest = key.dropFirst("choreo:idempotency:".count).split(separator: ":", maxSplits: 2)
                    .map(String.init)
                let new: String
                if rest.count == 3, names.contains(rest[1]) {
                    new = Topology.idempotencyKey(service: rest[1], principal: rest[0], key: rest[2])
                } else if rest.count >= 2, names.contains(rest[0]) {
                    new = Topology.idempotencyKey(
                        service: rest[0], principal: nil, key: rest.dropFirst().joined(separator: ":"))
                } else {
                    continue
                }
                try rename(key, new)
            }
        } while cursor != "0"
        return moved
    }
}
