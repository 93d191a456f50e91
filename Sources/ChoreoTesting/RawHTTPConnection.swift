// RawHTTPConnection: one plain TCP connection to an HTTP/1.1 server, for tests that need
// control an HTTP client hides: several requests written at once (pipelining), exact bytes,
// and the responses read back in the order the server wrote them.

import Choreo
import Foundation

/// A response read by ``RawHTTPConnection``.
public struct RawHTTPResponse: Sendable {
    /// The status code.
    public var status: Int
    /// Header fields, names lowercased (the last of a repeated name wins).
    public var headers: [String: String]
    /// The body (by `Content-Length`).
    public var body: String
}

/// A TCP connection to `127.0.0.1:port`; every read gives up after `timeout` seconds. The
/// blocking socket calls run on a private queue, never on the cooperative pool that a live
/// server in the same process needs.
public final class RawHTTPConnection: @unchecked Sendable {
    private let socket: Int32
    private var buffer: [UInt8] = []
    private let queue = DispatchQueue(label: "choreo.testing.raw-http")

    /// Runs a blocking call on the connection's queue.
    private func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Connects; throws when the connection is refused.
    public init(port: Int, timeout: Double = 10) throws {
        socket = Foundation.socket(AF_INET, PlatformSocket.stream, 0)
        guard socket >= 0 else { throw RawHTTPError(description: "socket: errno \(errno)") }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(socket)
            throw RawHTTPError(description: "connect to port \(port): errno \(errno)")
        }
    }

    deinit { close(socket) }

    /// Writes `text` as is (CRLFs included), in one write.
    public func send(_ text: String) async throws {
        try await offPool { try self.sendNow(text) }
    }

    private func sendNow(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { Foundation.send(socket, $0.baseAddress, $0.count, 0) }
            guard written > 0 else { throw RawHTTPError(description: "send: errno \(errno)") }
            sent += written
        }
    }

    /// Closes the sending side (a half-close): the server reads end of stream after what was
    /// sent, and may still answer.
    public func finishSending() {
        shutdown(socket, Int32(SHUT_WR))
    }

    /// A request's bytes: `method path HTTP/1.1`, `Host`, the given headers, and the body with
    /// its `Content-Length`.
    public static func request(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil
    ) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        return text
    }

    /// Reads the next response; throws when the server closes or stays silent past the timeout.
    public func response() async throws -> RawHTTPResponse {
        try await offPool { try self.responseNow() }
    }

    private func responseNow() throws -> RawHTTPResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            if let found = find(separator) {
                headerEnd = found
            } else {
                try fill()
            }
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw RawHTTPError(description: "not an HTTP response: \(head.prefix(100))")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = headerEnd! + separator.count
        while buffer.count < bodyStart + length { try fill() }
        let body = String(decoding: buffer[bodyStart..<bodyStart + length], as: UTF8.self)
        buffer.removeFirst(bodyStart + length)
        return RawHTTPResponse(status: status, headers: headers, body: body)
    }

    /// Waits until the server closes the connection (end of stream, or a reset), reading and
    /// discarding anything else it sends; throws when it stays open past the timeout.
    public func waitForClose() async throws {
        try await offPool {
            while true {
                do {
                    try self.fill()
                } catch let error as RawHTTPError where error.description == "closed" {
                    return
                }
            }
        }
    }

    private func find(_ pattern: [UInt8]) -> Int? {
        guard buffer.count >= pattern.count else { return nil }
        for index in 0...(buffer.count - pattern.count)
        where buffer[index..<index + pattern.count].elementsEqual(pattern) {
            return index
        }
        return nil
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer += chunk[..<count]
                return
            }
            if count == 0 || errno == ECONNRESET { throw RawHTTPError(description: "closed") }
            // A signal delivered to the test process (e.g. a worker child exiting) interrupts
            // the wait; it is not the server's doing.
            if errno == EINTR { continue }
            throw RawHTTPError(description: "recv: errno \(errno)" + (errno == EAGAIN ? " (timed out)" : ""))
        }
    }
}

/// A failure of ``RawHTTPConnection``.
public struct RawHTTPError: Error, CustomStringConvertible {
    /// What failed.
    public var description: String
}
