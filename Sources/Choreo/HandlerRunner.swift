// HandlerRunner: runs a service's handlers on one message exactly as a worker's batch
// processor does (inbox row, savepoint, queued writes, outbox rows, one commit), against
// Postgres only: no Redis, nothing settled. The seam under ChoreoTesting's HandlerHarness.

import Logging
import Postgres
import Redis

/// One message through the real batch path, without the transport. For tests.
package final class HandlerRunner {
    private let processor: BatchProcessor
    private var sequence = 0

    /// A runner for `service` as `definition` of `topology` (which names the query types),
    /// on `postgres` (whose search path includes the service's schema).
    package init(
        definition: ServiceDefinition, service: Service, topology: Topology, postgres: PostgresConnection?,
        logger: Logger = Logger(label: "choreo.harness")
    ) {
        processor = BatchProcessor(
            definition: definition, service: service, topology: topology, redis: nil, postgres: postgres,
            consumer: "harness", logger: logger, metrics: RuntimeMetrics(service: definition.name))
    }

    /// What handling one message committed: its outcome and next state, and the messages
    /// written to the outbox (the runtime would publish them next).
    package struct Run {
        package var outcome: MessageOutcome
        package var state: MessageState
        package var published: [OutboxMessage]
    }

    /// Handles `envelope` as delivery number `attempt` of an entry of `stream`.
    package func run(_ envelope: Envelope, stream: String, attempt: Int) throws -> Run {
        sequence += 1
        let entry = StreamEntry(id: "\(sequence)-0", fields: envelope.fields)
        let settlement = try processor.commit(stream: stream, deliveries: [Delivery(entry: entry, attempt: attempt)])
        guard let settled = settlement.settled.first else {
            return Run(outcome: .ignored, state: .acked, published: settlement.published)
        }
        return Run(outcome: settled.outcome, state: settled.state, published: settlement.published)
    }
}
