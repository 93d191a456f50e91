import ChoreoTesting
import Hello
import Testing

@Test func greetingIsStoredAndAnnounced() throws {
    let harness = try HandlerHarness(Hello.service())
    let handled = try harness.handle(Greet(name: "Ann"))
    #expect(try handled.event(Greeted.self) == Greeted(name: "Ann", greeting: "Hello, Ann!"))
    #expect(try handled.succeeded(Greeted.self)?.greeting == "Hello, Ann!")
    #expect(try harness.query("SELECT name FROM greetings").first?.decode(String.self, "name") == "Ann")
}
