import ChoreoTesting
import Postgres
import Testing

@testable import Choreo

@Suite("A batch's transaction as handlers see it: queued writes, immediate queries, savepoints")
struct TransactionSessionTests {
    let db: PostgresConnection
    let table = TestEnvironment.uniqueName("ts")

    init() throws {
        db = try PostgresConnection(url: TestEnvironment.databaseURL)
        try db.execute("CREATE TEMP TABLE \(table) (id int PRIMARY KEY)")
    }

    /// A batch's transaction, its prelude unsent, handling its first message.
    func openSession() -> TransactionSession {
        let session = TransactionSession(connection: db, prelude: [PostgresStatement("BEGIN")])
        start(session, message: 0)
        return session
    }

    /// Starts message number `index` of `session`, as the batch processor does.
    func start(_ session: TransactionSession, message index: Int) {
        session.beginMessage(index)
        session.markMessageStart()
    }

    func insert(_ id: Int) -> PostgresStatement { PostgresStatement("INSERT INTO \(table) VALUES ($1)", [id]) }

    func count(_ session: TransactionSession) throws -> Int? {
        try session.query("SELECT count(*) AS n FROM \(table) WHERE id > $1", [0]).first?.decode(Int.self, "n")
    }

    /// Commits what `session` still holds, as the batch's commit pipeline does.
    func commit(_ session: TransactionSession) throws {
        let outcomes = try db.pipeline(session.takePending() + [PostgresStatement("COMMIT")])
        #expect(outcomes.allSatisfy { (try? $0.get()) != nil })
    }

    func committedCount() throws -> Int? {
        try db.query("SELECT count(*) AS n FROM \(table)").first?.decode(Int.self, "n")
    }

    @Test("an immediate query goes out with the prelude and the queued writes in one round trip, and sees them")
    func queryInOneRoundTrip() throws {
        let session = openSession()
        session.enqueue(insert(1))
        session.enqueue(insert(2))
        let before = db.roundTrips
        #expect(try count(session) == 2)
        #expect(db.roundTrips - before == 1, "the query was not sent in the writes' pipeline")
        session.enqueue(insert(3))
        #expect(try count(session) == 3)
        #expect(db.roundTrips - before == 2)
        try commit(session)
        #expect(try committedCount() == 3)
    }

    @Test("a failing query is the handler's own error: rolling its message back keeps earlier messages' writes")
    func failingQueryIsTheHandlers() throws {
        let session = openSession()
        session.enqueue(insert(1))
        start(session, message: 1)
        session.enqueue(insert(2))
        #expect(throws: PostgresError.self) { try session.query("SELECT * FROM \(table)_missing", []) }
        #expect(session.aborted == nil, "the handler's failing query aborted the whole batch")
        try session.rollbackMessage()
        start(session, message: 2)
        session.enqueue(insert(3))
        try commit(session)
        let ids = try db.query("SELECT id FROM \(table) ORDER BY id").rows.map { try $0.decode(Int.self, "id") }
        #expect(ids == [1, 3])
    }

    @Test("a failing queued write ahead of the query aborts the batch, not only the message")
    func failingWriteAborts() throws {
        try db.execute("INSERT INTO \(table) VALUES (7)")
        let session = openSession()
        session.enqueue(insert(7))
        #expect(throws: PostgresError.self) { try count(session) }
        #expect(session.aborted?.isUniqueViolation == true)
        _ = try db.execute("ROLLBACK")
    }

    @Test("a query parameter holding a NUL is refused before anything is sent, the batch intact")
    func nulParameterRefusedFirst() throws {
        let session = openSession()
        session.enqueue(insert(1))
        let before = db.roundTrips
        #expect(throws: PostgresError.self) { try session.query("SELECT $1::text AS v", ["a\u{0}b"]) }
        #expect(db.roundTrips == before)
        #expect(session.aborted == nil)
        #expect(try count(session) == 1)
        try commit(session)
        #expect(try committedCount() == 1)
    }
}
