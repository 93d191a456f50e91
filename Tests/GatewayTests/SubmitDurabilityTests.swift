import Choreo
import ChoreoTesting
import Foundation
import Gateway
import Redis
import Testing

@Suite("Gateway submissions with replicated durability")
struct SubmitDurabilityTests {
    static func store(_ url: String) throws -> (CommandStore, ServiceDefinition) {
        let service = ServiceDefinition(name: TestEnvironment.uniqueName("svc"))
        var topology = Topology(redisURL: url, services: [service])
        topology.redisDurability = RedisDurability(level: .replicated, replicas: 1, timeout: 0.3)
        return (try CommandStore(topology: topology), service)
    }

    @Test("on the cluster, a submission is accepted once a replica has it; with an Idempotency-Key too")
    func accepted() async throws {
        let (store, service) = try Self.store(TestCluster.url)
        let envelope = Envelope(type: "DoIt", data: "{}")
        let outcome = try await store.submit(envelope, service: service, idempotencyKey: nil, fingerprint: "f")
        #expect(outcome == .accepted(envelope.id))
        #expect(try await store.command(envelope.id)?.status == .accepted)
        let keyed = Envelope(type: "DoIt", data: "{}")
        #expect(
            try await store.submit(keyed, service: service, idempotencyKey: "k", fingerprint: "f")
                == .accepted(keyed.id))
        let again = Envelope(type: "DoIt", data: "{}")
        #expect(
            try await store.submit(again, service: service, idempotencyKey: "k", fingerprint: "f")
                == .replayed(keyed.id))
        #expect(try await store.command(again.id) == nil, "the replay's own record is removed")
    }

    @Test("without a replica, a submission is refused as an outage (the gateway's 503), not accepted")
    func refused() async throws {
        let (store, service) = try Self.store(TestEnvironment.redisURL)
        await #expect {
            try await store.submit(
                Envelope(type: "DoIt", data: "{}"), service: service, idempotencyKey: nil, fingerprint: "f")
        } throws: { error in
            guard let error = error as? RedisError, case .notReplicated = error else { return false }
            return error.isUnavailable
        }
    }
}
