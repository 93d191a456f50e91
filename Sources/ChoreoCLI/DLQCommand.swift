// `choreo dlq list|show|replay|purge`: the operator's view of a service's dead letters, over
// DeadLetterSet (the same API the console uses).

import ArgumentParser
import Choreo
import Foundation
import Operations
import Redis

struct DLQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "List, show, replay and purge a service's dead letters.",
        discussion: "Exit status: 0 ok, 1 something could not be done, 2 usage or connection error.",
        subcommands: [List.self, Show.self, Replay.self, Purge.self])
}

/// The filters shared by list, replay and purge.
struct DeadLetterFilterOptions: ParsableArguments {
    @Option(help: "Only letters from this original stream.") var stream: String?
    @Option(help: "Only letters of this message type.") var type: String?
    @Option(help: "Only letters whose error contains this text (case-insensitive).") var error: String?
    @Option(help: "Only letters dead since (30m, 2h, 7d, an ISO time).") var since: String?
    @Option(help: "Only letters dead until (30m, 2h, 7d, an ISO time).") var until: String?

    func filter() throws -> DeadLetterFilter {
        DeadLetterFilter(
            stream: stream, type: type, errorContains: error, since: try since.map { try parseTime($0) },
            until: try until.map { try parseTime($0) })
    }
}

/// One dead letter as the CLI prints it in JSON.
struct DeadLetterView: Encodable {
    let entry: String
    let stream: String
    let sourceEntry: String
    let type: String
    let id: String?
    let correlation: String?
    let deliveries: Int
    let replays: Int
    let error: String
    let deadAt: String
    let consumer: String?
    let fields: [String: String]?

    init(_ letter: DeadLetter, full: Bool = false) {
        entry = letter.entry.id
        stream = letter.stream
        sourceEntry = letter.sourceEntryID
        type = letter.type
        id = letter.entry["id"]
        correlation = letter.entry["correlation"]
        deliveries = letter.deliveryCount
        replays = Int(letter.entry["replays"] ?? "") ?? 0
        error = letter.errorText
        deadAt = isoTime(letter.deadAtMilliseconds)
        consumer = letter.entry[DeadLetter.consumer]
        fields =
            full
            ? Dictionary(letter.entry.fields.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first }) : nil
    }
}

extension DLQCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dead letters of a service, newest first; --group for counts by type and error.")

        @Argument(help: "The service.") var service: String
        @OptionGroup var filters: DeadLetterFilterOptions
        @Option(help: "At most this many letters.") var limit = 50
        @Option(help: "Page: letters older than this dead-stream entry id.") var before: String?
        @Flag(help: "Group by type and error (counts), like retry groups.") var group = false
        @Flag(help: "JSON output.") var json = false
        @OptionGroup var options: TopologyOptions

        func run() throws {
            let context = try OperatorContext(options)
            let set = DeadLetterSet(service: try context.service(service), redis: context.redis)
            let filter = try filters.filter()
            if group {
                let groups = DeadLetterSet.groups(try set.list(filter))
                if json { return print(try prettyJSON(groups)) }
                print(
                    table(
                        ["COUNT", "TYPE", "NEWEST", "ERROR"],
                        groups.map { [String($0.count), $0.type, age($0.newestAt) + " ago", shorten($0.error, 100)] }))
                return
            }
            let letters = try set.list(filter, limit: limit, before: before)
            if json { return print(try prettyJSON(letters.map { DeadLetterView($0) })) }
            print(
                table(
                    ["ENTRY", "FROM", "TYPE", "DELIVERIES", "DEAD", "ERROR"],
                    letters.map {
                        [
                            $0.entry.id, "\($0.stream) \($0.sourceEntryID)", $0.type, String($0.deliveryCount),
                            age($0.deadAtMilliseconds) + " ago", shorten($0.errorText, 60),
                        ]
                    }))
            let total = try set.count()
            var footer = "\(letters.count) shown of \(total) dead letters in \(set.service.deadStream)"
            if letters.count == limit, let last = letters.last { footer += "; next page: --before \(last.entry.id)" }
            print(footer)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One dead letter: every field, the payload, the error.")

        @Argument(help: "The service.") var service: String
        @Argument(help: "The dead-stream entry id (from `dlq list`).") var entry: String
        @Flag(help: "JSON output.") var json = false
        @OptionGroup var options: TopologyOptions

        func run() throws {
            let context = try OperatorContext(options)
            let set = DeadLetterSet(service: try context.service(service), redis: context.redis)
            guard let letter = try set.get(entry) else {
                throw Exit.usage("no dead letter \(entry) in \(set.service.deadStream)")
            }
            if json { return print(try prettyJSON(DeadLetterView(letter, full: true))) }
            let view = DeadLetterView(letter)
            print("entry        \(view.entry) in \(set.service.deadStream)")
            print(
                "from         \(view.stream) entry \(view.sourceEntry) (group \(letter.entry[DeadLetter.group] ?? "?"))"
            )
            print("type         \(view.type)")
            print("message id   \(view.id ?? "(none)")")
            print("correlation  \(view.correlation ?? "(none)")")
            print("causation    \(letter.entry["causation"] ?? "(none)")")
            print("traceparent  \(letter.entry["traceparent"] ?? "(none)")")
            print("sent at      \(letter.entry["at"].flatMap { Int64($0) }.map(isoTime) ?? "?")")
            print(
                "history      delivered \(view.deliveries) time(s), last by \(view.consumer ?? "?"); dead at \(view.deadAt) (\(age(letter.deadAtMilliseconds)) ago); replayed \(view.replays) time(s) before"
            )
            print("error        \(view.error)")
            let data = letter.entry["data"] ?? ""
            if let object = try? JSONSerialization.jsonObject(with: Data(data.utf8), options: [.fragmentsAllowed]),
                let pretty = try? JSONSerialization.data(
                    withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
            {
                print("payload\n" + String(decoding: pretty, as: UTF8.self))
            } else {
                print("payload (not JSON)\n\(data)")
            }
            let other = letter.entry.fields.filter {
                !DeadLetter.metadataFields.contains($0.name)
                    && !["id", "type", "data", "correlation", "causation", "traceparent", "at", "replays"].contains(
                        $0.name)
            }
            for field in other { print("field        \(field.name) = \(field.value)") }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead letters back into the service's own commands stream.",
            discussion: """
                Each message keeps its envelope id, correlation, causation and traceparent and gets a \
                replay count. The dead letter is deleted only after the re-add succeeded.
                """)

        @OptionGroup var selection: DeadLetterSelection
        @Flag(help: "Show what would be replayed; change nothing.") var dryRun = false
        @Option(help: "At most this many replays per second.") var rate: Double?
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @Flag(help: "JSON output.") var json = false
        @OptionGroup var options: TopologyOptions

        func run() throws {
            let (set, letters) = try selection.select(options)
            if dryRun || letters.isEmpty {
                if json { return print(try prettyJSON(letters.map { DeadLetterView($0) })) }
                for letter in letters {
                    print("would replay \(letter.entry.id) \(letter.type) (\(shorten(letter.errorText, 60)))")
                }
                print("\(letters.count) dead letter(s) would be replayed into \(set.service.commandStream)")
                return
            }
            if !yes, stdinIsTerminal {
                print(
                    "replay \(letters.count) dead letter(s) into \(set.service.commandStream)? [y/N] ", terminator: "")
                guard readLine()?.lowercased().hasPrefix("y") == true else { throw Exit.usage("not confirmed") }
            }
            let started = Date()
            var replayed = 0
            var failures: [String] = []
            let progress = Progress(total: letters.count, enabled: stdoutIsTerminal && !json)
            if rate == nil {
                do {
                    try set.replay(letters) { done in
                        replayed = done
                        progress.update(done)
                    }
                } catch {
                    failures.append("after \(replayed) replayed: \(error)")
                }
            }
            for letter in letters where rate != nil {
                if let rate, rate > 0 {
                    let due = started.addingTimeInterval(Double(replayed + failures.count) / rate)
                    if due > Date() { Thread.sleep(until: due) }
                }
                do {
                    let id = try set.replay(letter)
                    replayed += 1
                    if !stdoutIsTerminal && !json {
                        print("replayed \(letter.entry.id) -> \(set.service.commandStream) \(id)")
                    }
                } catch {
                    failures.append("\(letter.entry.id): \(error)")
                }
                progress.update(replayed + failures.count)
            }
            progress.finish()
            let seconds = Date().timeIntervalSince(started)
            if json {
                struct Summary: Encodable {
                    let replayed: Int
                    let failed: [String]
                    let seconds: Double
                }
                print(try prettyJSON(Summary(replayed: replayed, failed: failures, seconds: seconds)))
            } else {
                for failure in failures { print("failed \(failure)") }
                print(
                    "replayed \(replayed) of \(letters.count) into \(set.service.commandStream) in \(String(format: "%.2f", seconds)) s"
                        + (seconds > 0 ? " (\(Int(Double(replayed) / seconds))/s)" : ""))
            }
            if !failures.isEmpty { throw Exit.problems }
        }
    }

    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead letters, after printing what will go.")

        @OptionGroup var selection: DeadLetterSelection
        @Flag(help: "Show what would be deleted; change nothing.") var dryRun = false
        @Flag(help: "Confirm the deletion (required when not on a terminal).") var yes = false
        @Flag(help: "JSON output.") var json = false
        @OptionGroup var options: TopologyOptions

        func run() throws {
            let (set, letters) = try selection.select(options)
            if !json {
                for letter in letters {
                    print(
                        "\(dryRun ? "would delete" : "deleting") \(letter.entry.id) \(letter.type) (\(shorten(letter.errorText, 60)))"
                    )
                }
            }
            if dryRun || letters.isEmpty {
                if json {
                    print(try prettyJSON(letters.map { DeadLetterView($0) }))
                } else {
                    print("\(letters.count) dead letter(s) would be deleted")
                }
                return
            }
            if !yes {
                guard stdinIsTerminal else {
                    throw Exit.usage("refusing to purge without --yes when not on a terminal")
                }
                print("delete these \(letters.count) dead letter(s) for good? [y/N] ", terminator: "")
                guard readLine()?.lowercased().hasPrefix("y") == true else { throw Exit.usage("not confirmed") }
            }
            let deleted = try set.purge(letters.map(\.entry.id))
            if json { print("{\"deleted\": \(deleted)}") } else { print("deleted \(deleted) dead letter(s)") }
        }
    }
}

/// The service and the letters a replay or purge applies to: entry ids, or --all / filters.
struct DeadLetterSelection: ParsableArguments {
    @Argument(help: "The service.") var service: String
    @Argument(help: "Dead-stream entry ids (or use --all / filters).") var entries: [String] = []
    @Flag(help: "Every dead letter matching the filters (all of them without filters).") var all = false
    @OptionGroup var filters: DeadLetterFilterOptions

    /// The service's dead letters and the selected ones, oldest first.
    func select(_ options: TopologyOptions) throws -> (DeadLetterSet, [DeadLetter]) {
        let context = try OperatorContext(options)
        let set = DeadLetterSet(service: try context.service(service), redis: context.redis)
        let filter = try filters.filter()
        if !entries.isEmpty {
            guard !all else { throw Exit.usage("give entry ids or --all, not both") }
            let letters = try entries.map { id in
                guard let letter = try set.get(id) else {
                    throw Exit.usage("no dead letter \(id) in \(set.service.deadStream)")
                }
                return letter
            }
            return (set, letters.filter(filter.matches))
        }
        guard all || !filter.isEmpty else { throw Exit.usage("name entry ids, or use --all or a filter") }
        return (set, try set.list(filter).reversed())
    }
}

/// A one-line progress bar on a terminal.
final class Progress {
    let total: Int
    let enabled: Bool
    var last = Date.distantPast

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func update(_ done: Int) {
        guard enabled, Date().timeIntervalSince(last) > 0.1 || done == total else { return }
        last = Date()
        let width = 30
        let filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardOutput.write(Data("\r[\(bar)] \(done)/\(total)".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}
