// ShopClient: a typed HTTP client of the reference system's gateway API (submit, long-wait,
// queries, GraphQL), used by the end-to-end tests, the load run and the saga benchmark.

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A client of the gateway's HTTP API.
public final class ShopClient: Sendable {
    /// A response: status and JSON body.
    public struct Reply: Sendable {
        public var status: Int
        public var body: String
        public var headers: [(String, String)]

        /// The body parsed as a JSON object (empty when it is not one).
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }

        /// A header's value.
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// A command's outcome as `GET /v1/commands/{id}` shows it.
    public struct Outcome: Sendable {
        public var id: String
        public var status: String
        public var result: [String: Any]? { reply.json["result"] as? [String: Any] }
        public var error: [String: Any]? { reply.json["error"] as? [String: Any] }
        public var reply: Reply
    }

    /// The gateway's base URL.
    public let base: String
    let apiKey: String?
    let http: HTTPClient

    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:8080`). Every client of the
    /// process shares one connection pool (up to 512 keep-alive connections per host).
    public init(base: String, apiKey: String? = nil) {
        self.base = base
        self.apiKey = apiKey
        self.http = Self.pool
    }

    /// The process's HTTP client: static, so it is never deinitialised without a shutdown.
    static let pool: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        configuration.timeout = .init(connect: .seconds(60), read: .seconds(90))
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Sends a request; `body` is sent as JSON.
    public func request(
        _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = [],
        contentType: String = "application/json"
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "content-type", value: contentType)
            request.body = .bytes(ByteBuffer(string: body))
        }
        if let apiKey { request.headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await http.execute(request, timeout: .seconds(90))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Reply(
            status: Int(response.status.code), body: String(buffer: buffer),
            headers: response.headers.map { ($0.name, $0.value) })
    }

    /// Submits a command (`POST`) and returns its id; throws unless the gateway answers 202.
    public func submit(_ path: String, _ body: String, idempotencyKey: String? = nil) async throws -> String {
        let reply = try await request(
            .POST, path, body: body, headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
        guard reply.status == 202, let id = reply.json["id"] as? String else {
            throw ClientError("POST \(path) answered \(reply.status): \(reply.body)")
        }
        return id
    }

    /// Long-waits for a command's outcome (repeating the wait until it is terminal or
    /// `timeout` passes).
    public func outcome(_ id: String, timeout: Double = 30) async throws -> Outcome {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = max(0, min(30, deadline.timeIntervalSinceNow))
            let reply = try await request(.GET, "/v1/commands/\(id)?wait=\(String(format: "%.1f", left))")
            let status = reply.json["status"] as? String ?? "unknown"
            if reply.status == 200 || Date() >= deadline || reply.status >= 400 {
                return Outcome(id: id, status: status, reply: reply)
            }
        }
    }

    /// Submits and waits for the outcome.
    public func run(_ path: String, _ body: String, timeout: Double = 30) async throws -> Outcome {
        try await outcome(try await submit(path, body), timeout: timeout)
    }

    /// Runs a command that must succeed; returns its result object.
    public func succeed(_ path: String, _ body: String) async throws -> [String: Any] {
        let outcome = try await run(path, body)
        guard outcome.status == "succeeded", let result = outcome.result else {
            throw ClientError("POST \(path) ended \(outcome.status): \(outcome.reply.body)")
        }
        return result
    }

    /// A query (`GET`).
    public func get(_ path: String) async throws -> Reply {
        try await request(.GET, path)
    }

    /// A GraphQL request.
    public func graphQL(_ query: String, variables: [String: Any] = [:]) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: ["query": query, "variables": variables])
        let reply = try await request(.POST, "/graphql", body: String(decoding: body, as: UTF8.self))
        guard reply.status == 200 else { throw ClientError("POST /graphql answered \(reply.status): \(reply.body)") }
        return reply.json
    }

    /// An unexpected answer.
    public struct ClientError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }
}
