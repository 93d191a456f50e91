import Gateway
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

extension Gateway {
    /// Serves the gateway's application on a free port (HummingbirdTesting's live mode) and
    /// runs `body` with the port. The live mode also connects a test client of its own, which
    /// these tests do not use, with a fixed 5 s connect timeout that a full test run on 2 cores
    /// can exceed; its failure is reported when the client is shut down, after `body`. That
    /// one error, after `body` returned, is not the test's: it is ignored.
    func serveLive(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let finished = Atomic<Bool>(false)
        do {
            try await application().test(.live) { client in
                try await body(try #require(client.port))
                finished.store(true, ordering: .relaxed)
            }
        } catch  where finished.load(ordering: .relaxed) && "\(error)".contains("Connect timeout") {
            return
        }
    }
}
