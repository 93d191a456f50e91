// ConsoleSession: who is using the console: a signed session cookie (set after the API key is
// typed once) or a Bearer key; whether they hold the admin scope; and the CSRF token their forms
// must carry. Signing keys derive from the API keys, so every gateway replica agrees.

import Crypto
import Foundation
import Gateway
import HTTPTypes
import Hummingbird

/// A console user.
struct ConsoleSession: Sendable {
    /// The API key's name (`anonymous` when authentication is off).
    let name: String
    /// Whether they may replay and purge.
    let isAdmin: Bool
    /// The signed cookie value (empty for Bearer or anonymous use).
    let cookie: String

    static let cookieName = "choreo_console"
    static let lifetime: TimeInterval = 8 * 3600
}

/// Issues and checks sessions and CSRF tokens.
struct ConsoleAuthority: Sendable {
    let keyring: APIKeyring
    let secretBytes: [UInt8]
    var secret: SymmetricKey { SymmetricKey(data: secretBytes) }

    init(keyring: APIKeyring, secret: String? = ProcessInfo.processInfo.environment["CHOREO_CONSOLE_SECRET"]) {
        self.keyring = keyring
        if let secret, !secret.isEmpty {
            self.secretBytes = Array(SHA256.hash(data: Data(secret.utf8)))
        } else {
            var material = Data("choreo-console".utf8)
            for key in keyring.keys { material += Data(key.name.utf8) + Data(key.digest) }
            self.secretBytes = Array(SHA256.hash(data: material))
        }
    }

    func sign(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: secret).map { String(format: "%02x", $0) }.joined()
    }

    /// A session cookie for an authenticated key.
    func cookie(for key: APIKey, now: Date = Date()) -> String {
        let payload = "\(key.name)|\(Int(now.timeIntervalSince1970 + ConsoleSession.lifetime))"
        return Data(payload.utf8).base64EncodedString() + "." + sign(payload)
    }

    /// The session of a request: from the cookie, a Bearer key, or anonymous when keys are off.
    func session(_ request: Request) -> ConsoleSession? {
        guard keyring.isEnabled else { return ConsoleSession(name: "anonymous", isAdmin: true, cookie: "") }
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
            let key = keyring.authenticate(String(header.dropFirst(7)))
        {
            return ConsoleSession(name: key.name, isAdmin: key.isAdmin, cookie: "")
        }
        guard let value = Self.cookie(ConsoleSession.cookieName, in: request) else { return nil }
        let parts = value.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, let data = Data(base64Encoded: parts[0]) else { return nil }
        let payload = String(decoding: data, as: UTF8.self)
        guard Self.constantTimeEqual(sign(payload), parts[1]) else { return nil }
        let fields = payload.split(separator: "|").map(String.init)
        guard fields.count == 2, let expiry = Double(fields[1]), expiry > Date().timeIntervalSince1970,
            let key = keyring.keys.first(where: { $0.name == fields[0] })
        else { return nil }
        return ConsoleSession(name: key.name, isAdmin: key.isAdmin, cookie: value)
    }

    /// The CSRF token of a session: forms carry it; a cross-site page cannot read it.
    func csrfToken(_ session: ConsoleSession) -> String {
        sign("csrf|\(session.name)|\(session.cookie)")
    }

    /// Whether a state-changing request is same-site: the token matches and the Origin (when the
    /// browser sends one) is this host.
    func verify(_ request: Request, session: ConsoleSession, token: String?) -> Bool {
        guard let token, Self.constantTimeEqual(token, csrfToken(session)) else { return false }
        if let origin = request.headers[HTTPField.Name("Origin")!], origin != "null" {
            let host = request.headers[HTTPField.Name("Host")!] ?? request.head.authority ?? ""
            guard let url = URL(string: origin), let originHost = url.host else { return false }
            let originAuthority = originHost + (url.port.map { ":\($0)" } ?? "")
            return originAuthority == host
        }
        return true
    }

    static func cookie(_ name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    static func constantTimeEqual(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8)
        let b = Array(right.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
