// Gateway+Capacity: whether a service may take a command right now: its liveness, lag and
// backpressure readings (kept fresh in the background for the channel-level submit), the 503s
// that fail fast when it may not, and the readiness answer.

import Choreo
import ChoreoJSON
import Foundation
import HTTPTypes
import Hummingbird

extension Gateway {
    /// Whether every routed service has the fresh readings that the channel-level submit
    /// needs (soon after ``start()``; until then valid submissions go through the router).
    public var hasFreshReadings: Bool {
        Set(topology.routes.map(\.service)).compactMap { topology.service($0) }.allSatisfy {
            store.hasCapacity(
                $0, requireLiveWorker: configuration.requireLiveWorker, backpressure: configuration.backpressure)
                != nil
        }
    }

    /// Keeps each routed service's liveness and pressure readings younger than their lifetime,
    /// so the channel-level submit always has fresh ones (and no request waits for a reading).
    func refreshReadings() async {
        let services = Set(topology.routes.map(\.service)).sorted().compactMap { topology.service($0) }
        while !Task.isCancelled {
            for service in services {
                if configuration.requireLiveWorker { _ = try? await store.hasLiveWorker(service.name, fresh: true) }
                if configuration.backpressure || service.policy.maxLag != nil {
                    _ = try? await store.pressure(service, fresh: true)
                }
            }
            try? await Task.sleep(nanoseconds: UInt64(CommandStore.readingLifetime * 250_000_000))
        }
    }

    func readiness() async throws -> Response {
        var problems: [String] = []
        if await !store.ping() { problems.append("redis: unreachable") }
        if let memory = await store.memory(), memory.refusesWrites, let problem = memory.problem {
            problems.append(problem)
        }
        var services: [String: JSONValue] = [:]
        for name in Set(topology.routes.map(\.service)).sorted() {
            let live = (try? await store.hasLiveWorker(name)) ?? false
            services[name] = .string(live ? "ready" : "no live worker")
            if !live { problems.append("\(name): no live worker") }
        }
        let body = JSONValue.object([
            "ready": .bool(problems.isEmpty), "services": .object(services),
            "problems": .array(problems.map(JSONValue.string)),
        ])
        return Self.json(problems.isEmpty ? .ok : .serviceUnavailable, body.text)
    }

    /// Fails fast (503) when the service has no live worker, its lag is over its limit, or one of
    /// its streams holds a backlog over the stream's limit (backpressure).
    func requireCapacity(_ service: ServiceDefinition) async throws {
        // A refusal is judged on a fresh reading (a worker may have started within the second).
        if configuration.requireLiveWorker, try await !store.hasLiveWorker(service.name),
            try await !store.hasLiveWorker(service.name, fresh: true)
        {
            throw Problem(
                .serviceUnavailable, "Service unavailable",
                detail: "service '\(service.name)' has no live worker; retry later", retryAfter: 5)
        }
        guard service.policy.maxLag != nil || configuration.backpressure else { return }
        let pressure = try await store.pressure(service)
        if let limit = service.policy.maxLag, let lag = pressure.lag, lag > limit {
            throw Problem(
                .serviceUnavailable, "Service overloaded",
                detail: "service '\(service.name)' is \(lag) messages behind (limit \(limit)); retry later",
                retryAfter: 2)
        }
        if configuration.backpressure, let over = pressure.overLimit {
            let who = over.slowestGroup.map { " for consumer group '\($0)'" } ?? ""
            throw Problem(
                .serviceUnavailable, "Service backlogged",
                detail:
                    "stream '\(over.stream)' holds \(over.backlog) unacknowledged entries\(who), over its limit of "
                    + "\(over.limit); nothing is dropped, retry later",
                retryAfter: 5)
        }
    }
}
