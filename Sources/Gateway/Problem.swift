// Problem: every gateway error as an RFC 9457 application/problem+json response.

import Choreo
import ChoreoJSON
import Foundation
import Hummingbird
import Redis

/// An HTTP error rendered as RFC 9457 `application/problem+json`:
/// `{"type", "title", "status", "detail", "instance"?, "errors"?}`.
public struct Problem: Error, HTTPResponseError, Sendable {
    /// One invalid field of a request body.
    public struct FieldError: Sendable, Equatable, Codable {
        /// JSON pointer-like path, e.g. `items[0].quantity`.
        public var field: String
        /// What is wrong.
        public var message: String
    }

    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A short, stable summary of the problem type.
    public var title: String
    /// What went wrong for this request.
    public var detail: String
    /// Seconds after which a retry may succeed (429, 503).
    public var retryAfter: Int?
    /// Field errors (422).
    public var errors: [FieldError]

    /// Creates a problem.
    public init(
        _ status: HTTPResponse.Status, _ title: String, detail: String, retryAfter: Int? = nil,
        errors: [FieldError] = []
    ) {
        self.status = status
        self.title = title
        self.detail = detail
        self.retryAfter = retryAfter
        self.errors = errors
    }

    /// The problem's `type` URI.
    public var type: String {
        "https://choreo.dev/problems/\(title.lowercased().replacingOccurrences(of: " ", with: "-"))"
    }

    /// The response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: status, headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: body(instance: request.uri.path))))
    }

    /// The problem document (RFC 9457), with `instance` the request's path.
    func body(instance: String) -> [UInt8] {
        var document: [String: JSONValue] = [
            "type": .string(type), "title": .string(title), "status": .integer(Int64(status.code)),
            "detail": .string(detail), "instance": .string(instance),
        ]
        if !errors.isEmpty {
            document["errors"] = .array(
                errors.map { .object(["field": .string($0.field), "message": .string($0.message)]) })
        }
        return Array(JSONValue.object(document).text.utf8)
    }

    /// `Content-Type: application/problem+json`, and `Retry-After` when set.
    var headers: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return headers
    }

    /// 500: names no internals (log the error with the request instead).
    static let internalError = Problem(
        .internalServerError, "Internal error", detail: "the request could not be completed")

    /// The answer to an error no route handled: 503 with `Retry-After` while Redis cannot take
    /// the work (out of memory, read-only replica, down), else ``internalError``.
    static func unexpected(_ error: Error) -> Problem {
        guard let error = error as? RedisError, error.isUnavailable else { return internalError }
        let detail =
            error.serverCode == "OOM"
            ? "the message store is full (Redis at maxmemory) and refuses new work; nothing was accepted, retry later"
            : "the message store is unavailable; nothing was accepted, retry later"
        return Problem(.serviceUnavailable, "Service unavailable", detail: detail, retryAfter: 5)
    }

    /// 400.
    public static func badRequest(_ detail: String) -> Problem {
        Problem(.badRequest, "Malformed request", detail: detail)
    }
    /// 404.
    public static func notFound(_ detail: String) -> Problem { Problem(.notFound, "Not found", detail: detail) }
    static func unprocessable(_ detail: String, _ errors: [FieldError] = []) -> Problem {
        Problem(.unprocessableContent, "Validation failed", detail: detail, errors: errors)
    }
}

/// Turns every error thrown below it into a problem response; unknown errors become a 500
/// that names no internals (the error is logged with the request id).
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return try problem.response(from: request, context: context)
        } catch let error as HTTPError {
            let title: String
            switch error.status.code {
            case 404: title = "Not found"
            case 405: title = "Method not allowed"
            case 413: title = "Payload too large"
            default: title = error.status.reasonPhrase
            }
            return try Problem(error.status, title, detail: error.body ?? error.status.reasonPhrase).response(
                from: request, context: context)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            return try Problem.unexpected(error).response(from: request, context: context)
        }
    }
}

extension JSONValue {
    /// Parses a request body; a body that is not JSON is a ``Problem`` (400) naming why.
    static func parseBody(bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        do {
            return try JSONValue.parse(bytes: bytes)
        } catch {
            throw Problem.badRequest(error.reason)
        }
    }
}
