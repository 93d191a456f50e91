// RedisScript: a Lua script run by EVALSHA, loaded on first use and again after NOSCRIPT.

import Synchronization

/// A Lua script, run with `EVALSHA` and loaded with `SCRIPT LOAD` when the server does not
/// know it (first use, after a restart or a `SCRIPT FLUSH`).
///
/// A script is a value to share: keep one per script text, for example as a `static let`.
public final class RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    private let sha = Mutex<String?>(nil)

    /// Creates a script from its Lua source.
    public init(_ source: String) {
        self.source = source
    }

    /// The SHA1 digest the server reported, once loaded.
    public var digest: String? { sha.withLock { $0 } }

    /// Runs the script with `keys` and `arguments`, loading it first when needed.
    /// A script error is thrown as ``RedisError/server(command:message:)``.
    @discardableResult
    public func run(on connection: RedisConnection, keys: [String] = [], arguments: [String] = []) throws
        -> RedisReply
    {
        let tail = [String(keys.count)] + keys + arguments
        if let digest {
            do {
                return try connection.command(["EVALSHA", digest] + tail)
            } catch let error as RedisError where error.serverCode == "NOSCRIPT" {
                // The server forgot the script (restart or SCRIPT FLUSH): load it again below.
            }
        }
        let newDigest = try connection.loadScript(source, keys: keys)
        sha.withLock { $0 = newDigest }
        return try connection.command(["EVALSHA", newDigest] + tail)
    }
}
