// ProcessSupervisor: runs N child processes of the same binary, restarts a crashed child with
// backoff, forwards SIGTERM/SIGINT, and returns when every child has exited.

import Foundation
import Logging
import Synchronization

/// Supervises `count` copies of a child command.
public final class ProcessSupervisor: Sendable {
    /// The executable to run (normally this binary: `/proc/self/exe`).
    public let executable: String
    /// Its arguments, by slot (0..<count): lets each child get, say, its own metrics port.
    public let arguments: @Sendable (Int) -> [String]
    /// How many children to keep running.
    public let count: Int
    /// Seconds a child has to exit after SIGTERM before it is killed.
    public let shutdownTimeout: Double
    let logger: Logger
    private let stopping = Mutex(false)
    private let children = Mutex<[Int: pid_t]>([:])

    /// Creates a supervisor.
    public init(
        executable: String, arguments: @escaping @Sendable (Int) -> [String], count: Int, shutdownTimeout: Double,
        logger: Logger
    ) {
        self.executable = executable
        self.arguments = arguments
        self.count = count
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    /// The pids of the children now running, by slot.
    public var pids: [Int: pid_t] { children.withLock { $0 } }

    /// Asks every child to stop (SIGTERM) and stops restarting them.
    public func stop() {
        stopping.withLock { $0 = true }
        for pid in children.withLock({ Array($0.values) }) { kill(pid, SIGTERM) }
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    /// Runs until ``stop()`` and all children exited. Returns 0 if every child drained cleanly.
    public func run() -> Int32 {
        var restarts = [Int](repeating: 0, count: count)
        var startedAt = [Date](repeating: Date(), count: count)
        var nextStart = [Date](repeating: Date(), count: count)
        var exitStatus: Int32 = 0
        var stopRequestedAt: Date?
        while true {
            if !isStopping {
                for slot in 0..<count where children.withLock({ $0[slot] }) == nil && Date() >= nextStart[slot] {
                    do {
                        let pid = try ChildProcess.spawn(executable, arguments(slot))
                        children.withLock { $0[slot] = pid }
                        startedAt[slot] = Date()
                        logger.info("started child", metadata: ["slot": "\(slot)", "pid": "\(pid)"])
                    } catch {
                        logger.error("cannot start child", metadata: ["error": "\(error)"])
                        nextStart[slot] = Date().addingTimeInterval(1)
                    }
                }
            } else if stopRequestedAt == nil {
                stopRequestedAt = Date()
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0, let slot = children.withLock({ map in map.first { $0.value == pid }?.key }) {
                children.withLock { $0[slot] = nil }
                let exited = (status & 0x7f) == 0
                let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                if isStopping {
                    logger.info("child exited", metadata: ["pid": "\(pid)", "status": "\(code)"])
                    if code != 0 { exitStatus = 1 }
                } else {
                    // Crashed or exited on its own: restart with backoff. A child that ran for
                    // 10 s was not crash-looping (e.g. it was killed from outside): its slot
                    // restarts at once, so one unlucky slot does not leave the pool short for long.
                    if Date().timeIntervalSince(startedAt[slot]) > 10 { restarts[slot] = 0 }
                    let delay = min(0.5 * pow(2, Double(restarts[slot])), 30)
                    restarts[slot] += 1
                    nextStart[slot] = Date().addingTimeInterval(delay)
                    logger.error(
                        "child exited unexpectedly; restarting",
                        metadata: ["pid": "\(pid)", "status": "\(code)", "restart_in_ms": "\(Int(delay * 1000))"])
                }
            }
            if isStopping {
                if children.withLock({ $0.isEmpty }) { return exitStatus }
                if let since = stopRequestedAt, Date().timeIntervalSince(since) > shutdownTimeout + 5 {
                    for pid in children.withLock({ Array($0.values) }) { kill(pid, SIGKILL) }
                    exitStatus = 1
                }
            }
            if pid <= 0 { usleep(20_000) }
        }
    }
}
