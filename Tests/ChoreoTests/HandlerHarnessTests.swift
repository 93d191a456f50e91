// HandlerHarnessTests: the harness keeps the runtime's transaction semantics (a throw rolls
// back the message's writes and its inbox row, a retry runs again, a poison payload is dead)
// and refuses emissions a service did not declare.

import Choreo
import ChoreoTesting
import Postgres
import Testing

@Suite("Handler harness")
struct HandlerHarnessTests {
    struct Note: CommandContract {
        var text: String
        var fail: Bool
    }

    struct Noted: EventContract {
        var text: String
    }

    struct Undeclared: EventContract {}

    struct Charge: CommandContract {
        var amount: Int
    }

    static func service() -> Service {
        var service = Service(
            name: "notes",
            migrations: [Migration(version: 1, name: "notes", sql: "CREATE TABLE notes (text text PRIMARY KEY)")])
        service.on(Note.self) { context, note in
            try context.execute("INSERT INTO notes (text) VALUES ($1)", [note.text])
            // An immediate query sees the queued write (flushed in the message's savepoint).
            let count = try context.query("SELECT count(*) AS n FROM notes").first?.decode(Int.self, "n") ?? 0
            try context.publish(Noted(text: "\(note.text) #\(count)"))
            if note.fail { throw Failure() }
        }
        service.on("Sneaky") { context in try context.publish(Undeclared()) }
        service.on("Bill") { context in try context.send(Charge(amount: 5), to: "payments") }
        service.publishes(Noted.self)
        service.sends(Charge.self, to: "payments")
        return service
    }

    struct Failure: Error {}

    @Test("a throwing handler's writes and inbox row roll back; its retry runs again and commits once")
    func throwRollsBack() throws {
        let harness = try HandlerHarness(Self.service())
        let id = Envelope.newID()
        let failed = try harness.handle(Note(text: "a", fail: true), id: id)
        guard case .failed = failed.outcome else {
            Issue.record("expected failed, got \(failed.outcome)")
            return
        }
        guard case .retrying(attempt: 1, _, _) = failed.state else {
            Issue.record("expected a retry, got \(failed.state)")
            return
        }
        #expect(failed.events.isEmpty)
        #expect(try harness.query("SELECT text FROM notes").rows.isEmpty)
        let retried = try harness.handle(Note(text: "a", fail: false), id: id, attempt: 2)
        #expect(retried.outcome == .handled)
        #expect(try retried.event(Noted.self)?.text == "a #1")
        #expect(try harness.handle(Note(text: "a", fail: false), id: id, attempt: 3).outcome == .duplicate)
        #expect(try harness.query("SELECT count(*) AS n FROM notes").first?.decode(Int.self, "n") == 1)
    }

    @Test("a payload that does not decode as the contract is poison, dead at once")
    func undecodableIsPoison() throws {
        let harness = try HandlerHarness(Self.service())
        let handled = try harness.handle(type: "Note", data: #"{"text": "a"}"#)
        guard case .dead(let reason) = handled.state else {
            Issue.record("expected dead, got \(handled.state)")
            return
        }
        #expect(reason.contains("missing field 'fail'"), "\(reason)")
    }

    @Test("a command sent to another service goes to the stream its workers read")
    func sentCommandsReachTheTargetsStream() throws {
        let harness = try HandlerHarness(Self.service())
        let handled = try harness.handle(type: "Bill", data: "{}")
        #expect(handled.commands.map(\.service) == ["payments"])
        #expect(try handled.commands.first?.decode(Charge.self).amount == 5)
        let outbox = try harness.query("SELECT fields FROM outbox").rows.map { try $0.decode(String.self, "fields") }
        #expect(outbox.count == 1)
        #expect(outbox.first?.contains("\"\(ServiceDefinition(name: "payments").commandStream)\"") == true, "\(outbox)")
    }

    @Test("publishing a type the service does not declare fails the test")
    func undeclaredEmissionsAreRefused() throws {
        let harness = try HandlerHarness(Self.service())
        #expect(throws: HandlerHarness.HarnessError.self) { try harness.handle(type: "Sneaky", data: "{}") }
    }
}
