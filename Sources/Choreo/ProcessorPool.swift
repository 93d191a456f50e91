// ProcessorPool: the batch processors (each with its own Postgres connection) that the
// partition loops of one process share for one stream, partition_concurrency of them at most,
// handed out in turn: a process owning many partitions holds few Postgres connections.

import Foundation

/// Batch processors lent to partition loops, one loop at a time per processor.
final class ProcessorPool: @unchecked Sendable {
    private let turns: TurnGate
    private let lock = NSLock()
    private var idle: [BatchProcessor] = []

    /// A pool of at most `size` processors.
    init(size: Int) { turns = TurnGate(permits: size) }

    /// Runs `body` with a processor of its own, after every earlier caller had its turn; the
    /// processor is made with `make` when none is idle (at most `size` are ever made).
    func with<T>(make: () throws -> BatchProcessor, _ body: (BatchProcessor) throws -> T) throws -> T {
        try turns.withTurn {
            let processor = try lock.withLock { idle.popLast() } ?? make()
            defer { lock.withLock { idle.append(processor) } }
            return try body(processor)
        }
    }
}
