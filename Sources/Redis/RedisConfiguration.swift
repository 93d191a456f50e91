// RedisConfiguration: where and how to connect, parsed from a redis:// URL and validated.

import Foundation

/// Connection settings for one Redis connection.
///
/// Built from a URL of the form `redis://[user:password@]host:port[/db]`. The password is
/// never part of ``description`` or of any error message.
public struct RedisConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// Host name or IP address.
    public var host: String
    /// TCP port (default 6379).
    public var port: Int
    /// ACL user name; `nil` authenticates as the default user.
    public var username: String?
    /// Password; `nil` sends no `AUTH`.
    public var password: String?
    /// Logical database selected after connecting (default 0).
    public var database: Int
    /// How long opening a connection may take, in seconds.
    public var connectTimeout: Double
    /// How long one command may wait for its reply, in seconds. Blocking commands
    /// (`XREADGROUP ... BLOCK`) extend it by their own block time.
    public var commandTimeout: Double
    /// Delay before the first reconnect attempt after a failure, in seconds; doubles per
    /// failed attempt up to ``maxReconnectDelay``.
    public var reconnectDelay: Double
    /// Upper bound of the reconnect delay, in seconds.
    public var maxReconnectDelay: Double
    /// More nodes of the same Redis Cluster (`host:port`), tried in order when the first does
    /// not answer: `redis://h1:7000,h2:7001,h3:7002/0`.
    public var otherSeeds: [String] = []

    /// Creates a configuration from parts.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, connectTimeout: Double = 2, commandTimeout: Double = 5,
        reconnectDelay: Double = 0.05, maxReconnectDelay: Double = 2
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
    }

    /// Parses `redis://[user:password@]host:port[/db]`. User and password may be
    /// percent-encoded. Throws ``RedisError/invalidURL(url:reason:)`` naming the problem.
    public init(url: String) throws {
        func fail(_ reason: String) -> RedisError { .invalidURL(url: Self.redact(url), reason: reason) }
        guard let schemeEnd = url.range(of: "://") else { throw fail("expected redis://host:port") }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else { throw fail("unsupported scheme '\(scheme)' (use redis://)") }
        var rest = Substring(url[schemeEnd.upperBound...])
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = String(credentials[..<colon])
                username = user.isEmpty ? nil : try Self.percentDecoded(user, fail)
                password = try Self.percentDecoded(String(credentials[credentials.index(after: colon)...]), fail)
            } else if !credentials.isEmpty {
                password = try Self.percentDecoded(String(credentials), fail)
            }
        }
        var seeds = rest.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var host = seeds.removeFirst()
        for seed in seeds {
            guard !seed.isEmpty else { throw fail("empty node in the list of cluster nodes") }
            guard let colon = seed.lastIndex(of: ":"), let seedPort = Int(seed[seed.index(after: colon)...]),
                (1...65535).contains(seedPort), colon != seed.startIndex
            else { throw fail("cluster node '\(seed)' is not host:port") }
        }
        var port = 6379
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw fail("unclosed '[' in IPv6 host") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { throw fail("port is not a number") }
                port = value
            } else if !after.isEmpty {
                throw fail("unexpected text after IPv6 host")
            }
            host = inner
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]) else { throw fail("port is not a number") }
            port = value
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw fail("missing host") }
        guard (1...65535).contains(port) else { throw fail("port \(port) is out of range 1-65535") }
        var database = 0
        if !path.isEmpty {
            guard let db = Int(path), db >= 0 else { throw fail("database '\(path)' is not a non-negative number") }
            database = db
        }
        self.init(host: host, port: port, username: username, password: password, database: database)
        self.otherSeeds = seeds
    }

    /// The same settings for the server at `endpoint` (`host:port` or `[v6]:port`), or nil
    /// when `endpoint` is not of that form.
    public func at(_ endpoint: String) -> RedisConfiguration? {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...])
        else { return nil }
        var host = String(endpoint[..<colon])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        var settings = self
        settings.host = host
        settings.port = port
        settings.otherSeeds = []
        return settings
    }

    /// `host:port`, used to name the server in errors and logs.
    public var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var credentials = ""
        if username != nil || password != nil {
            credentials = (username ?? "") + (password != nil ? ":***" : "") + "@"
        }
        return "redis://\(credentials)" + ([endpoint] + otherSeeds).joined(separator: ",") + "/\(database)"
    }

    static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://"), let at = url.lastIndex(of: "@"),
            at > schemeEnd.upperBound
        else { return url }
        let credentials = url[schemeEnd.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    private static func percentDecoded(_ text: String, _ fail: (String) -> RedisError) throws -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { throw fail("bad percent-encoding in credentials") }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
