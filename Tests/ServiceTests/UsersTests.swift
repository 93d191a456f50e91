// UsersTests: the users service's decisions through the handler harness.

import Choreo
import ChoreoTesting
import ShopContracts
import Testing
import Users

@Suite("Users handlers")
struct UsersTests {
    let harness: HandlerHarness

    init() throws { harness = try HandlerHarness(Users.service()) }

    @Test("a user is created with the command's id and announced with UserCreated")
    func createUser() throws {
        let id = Envelope.newID()
        let created = try harness.handle(CreateUser(email: " Ada@Example.com ", name: "Ada"), id: id)
        let user = try #require(try created.succeeded(User.self))
        #expect(user.id == id)
        #expect(user.email == "Ada@Example.com")
        #expect(try created.event(UserCreated.self) == UserCreated(userId: id, email: "Ada@Example.com", name: "Ada"))
    }

    @Test("an email taken in another case is a duplicate; a malformed one is invalid; no event either way")
    func duplicateAndInvalidEmails() throws {
        try harness.handle(CreateUser(email: "ada@example.com", name: "Ada"))
        let duplicate = try harness.handle(CreateUser(email: "ADA@example.COM", name: "Other"))
        #expect(duplicate.outcome == .rejected)
        #expect(duplicate.rejectionCode == "duplicate_email")
        #expect(duplicate.events.isEmpty)
        let invalid = try harness.handle(CreateUser(email: "not an email", name: "X"))
        #expect(invalid.rejectionCode == "invalid_email")
        #expect(try harness.query("SELECT count(*) AS n FROM users").first?.decode(Int.self, "n") == 1)
    }
}
