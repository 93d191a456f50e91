// APIKeyring: API keys for the gateway, kept as SHA-256 digests, compared in constant time,
// each optionally limited to route prefixes.

import Crypto
import Foundation

/// One API key: a name (for logs and rate limits), the digest of its secret, and the path
/// prefixes it may call (empty: every route).
public struct APIKey: Sendable, Equatable {
    /// The key's name, e.g. `ci` or `mobile-app`.
    public var name: String
    /// SHA-256 of the secret.
    public var digest: [UInt8]
    /// Path prefixes it may use; empty allows every route.
    public var routes: [String]
    /// The `admin` scope: operator actions in the console (replay, purge). Written as the
    /// word `admin` among the prefixes (`ops:secret:admin` or `ops:secret:/console|admin`).
    public var isAdmin: Bool = false

    /// Whether the key may call `path`.
    public func allows(_ path: String) -> Bool {
        routes.isEmpty || routes.contains { path.hasPrefix($0) }
    }
}

/// The set of API keys. Empty means authentication is off (development only).
public struct APIKeyring: Sendable, Equatable {
    /// The keys.
    public var keys: [APIKey]

    /// An empty keyring (authentication off).
    public init() { keys = [] }

    /// Parses `name:secret[:/prefix|/prefix|admin]` entries separated by commas or newlines (the format
    /// of `CHOREO_API_KEYS` and of a keys file). Secrets are hashed at once and not kept.
    public init(spec: String) throws {
        keys = []
        for raw in spec.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let entry = raw.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            let parts = entry.split(separator: ":", maxSplits: 2).map(String.init)
            guard parts.count >= 2, !parts[0].isEmpty, parts[1].count >= 16 else {
                throw APIKeyError(
                    description:
                        "API key entry '\(parts.first ?? "")' must be name:secret[:/prefix|...] with a secret of 16+ characters"
                )
            }
            var routes = parts.count > 2 ? parts[2].split(separator: "|").map(String.init) : []
            let isAdmin = routes.contains("admin")
            routes.removeAll { $0 == "admin" }
            keys.append(APIKey(name: parts[0], digest: Self.digest(parts[1]), routes: routes, isAdmin: isAdmin))
        }
    }

    /// Loads keys from `CHOREO_API_KEYS` and the file named by `CHOREO_API_KEYS_FILE`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> APIKeyring
    {
        var spec = environment["CHOREO_API_KEYS"] ?? ""
        if let file = environment["CHOREO_API_KEYS_FILE"], !file.isEmpty {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw APIKeyError(description: "cannot read CHOREO_API_KEYS_FILE \(file)")
            }
            spec += "\n" + text
        }
        return try APIKeyring(spec: spec)
    }

    /// Whether authentication is on.
    public var isEnabled: Bool { !keys.isEmpty }

    /// The key named by an `Authorization: Bearer <secret>` header value, if any.
    public func authenticate(authorization header: String?) -> APIKey? {
        guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
        return authenticate(String(header.dropFirst(7)))
    }

    /// The key whose secret is `token`, comparing digests in constant time.
    public func authenticate(_ token: String) -> APIKey? {
        let candidate = Self.digest(token)
        var found: APIKey?
        for key in keys {
            var difference: UInt8 = 0
            for index in 0..<32 { difference |= key.digest[index] ^ candidate[index] }
            if difference == 0 { found = key }
        }
        return found
    }

    static func digest(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(secret.utf8)))
    }
}

/// A malformed API key configuration.
public struct APIKeyError: Error, CustomStringConvertible {
    public let description: String
}
