// `choreo bench replay`: how fast dead letters go back to their service (chunked XADD then XDEL,
// as `choreo dlq replay` does), against plain pipelined XADD of the same messages in the same run.

import ArgumentParser
import Choreo
import Foundation
import Operations
import Redis

struct ReplayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Replay N dead letters (dlq replay's path) vs pipelined XADD.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Dead letters per run.") var count = 10_000

    func run() throws {
        let redis = try RedisConnection(url: options.redis)
        let service = ServiceDefinition(name: "bench-replay-\(getpid())")
        defer { _ = try? redis.command(["DEL", service.commandStream, service.deadStream]) }
        let set = DeadLetterSet(service: service, redis: redis)
        func fill() throws -> [[String]] {
            let commands = (0..<count).map { index -> [String] in
                let fields =
                    Envelope(type: "Record", data: "{\"key\":\"k\",\"value\":\(index)}").fields + [
                        StreamField(DeadLetter.sourceStream, service.commandStream),
                        StreamField(DeadLetter.sourceID, "0-1"),
                        StreamField(DeadLetter.group, service.name), StreamField(DeadLetter.deliveries, "5"),
                        StreamField(DeadLetter.error, "bench"), StreamField(DeadLetter.deadAt, "1"),
                    ]
                return ["XADD", service.deadStream, "*"] + fields.flatMap { [$0.name, $0.value] }
            }
            try redis.pipelineCheckingErrors(commands)
            return commands
        }
        try measure("baseline: XADD the same \(count) messages, pipelined", runs: options.runs) {
            _ = try redis.command(["DEL", service.deadStream])
            let commands = try fill()
            let start = ContinuousClock.now
            try redis.pipelineCheckingErrors(commands.map { ["XADD", service.commandStream] + $0.dropFirst(2) })
            return Double(count) / elapsed(since: start)
        }
        try measure("dlq replay --all: list + re-add + delete \(count) letters", runs: options.runs) {
            _ = try redis.command(["DEL", service.deadStream, service.commandStream])
            _ = try fill()
            let start = ContinuousClock.now
            try set.replay(try set.list())
            return Double(count) / elapsed(since: start)
        }
        try measure("dlq replay --rate (one by one): 2,000 letters", runs: options.runs) {
            _ = try redis.command(["DEL", service.deadStream, service.commandStream])
            _ = try fill()
            let letters = Array(try set.list().prefix(2_000))
            let start = ContinuousClock.now
            for letter in letters { try set.replay(letter) }
            return Double(letters.count) / elapsed(since: start)
        }
    }
}
