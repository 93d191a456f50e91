// EphemeralRedis: a private redis-server for tests that stop and restart Redis.

import Choreo
import Foundation

/// A `redis-server` of a test's own, on a free loopback port with data in a temporary folder.
/// AOF is on (`appendfsync always`), so a restart keeps every acknowledged write; with
/// `appendOnly` false, a restart loads the last `SAVE` snapshot and loses what came after.
public final class EphemeralRedis: @unchecked Sendable {
    /// The port it listens on (kept across restarts).
    public let port: Int
    /// Its data folder.
    public let directory: String
    /// `redis://127.0.0.1:port/0`.
    public var url: String { "redis://127.0.0.1:\(port)/0" }
    private var pid: pid_t = 0
    private let appendOnly: Bool

    /// Starts the server and waits until it answers.
    public init(appendOnly: Bool = true) throws {
        self.appendOnly = appendOnly
        // Outside the kernel's ephemeral range: the server is restarted on the same port, and
        // meanwhile an outgoing connection could take a port from that range.
        self.port = try freePort(in: 20_000..<32_000)
        self.directory = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("redis")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit { stop() }

    /// Starts the server (again) on the same port and data.
    public func start() throws {
        pid = try ChildProcess.spawn(
            "/usr/bin/redis-server",
            [
                "--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
                "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always", "--logfile",
                directory + "/redis.log",
            ])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if canConnect(port: port) { return }
            usleep(20_000)
        }
        throw TimeoutError(what: "redis-server on port \(port)", seconds: 10, lastError: nil)
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    public func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }
}

/// A TCP port in `range` on 127.0.0.1 that nothing is bound to right now, tried at random.
public func freePort(in range: Range<Int>) throws -> Int {
    for _ in 0..<200 {
        let port = Int.random(in: range)
        let fd = socket(AF_INET, PlatformSocket.stream, 0)
        let bound = withLoopbackAddress(port: port) { bind(fd, $0, $1) == 0 }
        close(fd)
        if bound { return port }
    }
    return try freePort()
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, PlatformSocket.stream, 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else {
        throw TimeoutError(what: "a free port", seconds: 0, lastError: String(cString: strerror(errno)))
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
public func canConnect(port: Int) -> Bool {
    guard let fd = connectLoopback(port: port) else { return false }
    close(fd)
    return true
}

/// A TCP socket connected to 127.0.0.1:`port`, or nil; the caller closes it.
public func connectLoopback(port: Int) -> Int32? {
    let fd = socket(AF_INET, PlatformSocket.stream, 0)
    let connected = withLoopbackAddress(port: port) { connect(fd, $0, $1) == 0 }
    guard connected else {
        close(fd)
        return nil
    }
    return fd
}

/// Calls `body` with the socket address 127.0.0.1:`port` and its length.
func withLoopbackAddress<R>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A minimal HTTP/1.1 GET over loopback; returns the raw response (status line, headers, body).
public func httpGet(port: Int, path: String) throws -> String {
    guard let fd = connectLoopback(port: port) else {
        throw TimeoutError(what: "a connection to 127.0.0.1:\(port)", seconds: 0, lastError: nil)
    }
    defer { close(fd) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    return String(decoding: response, as: UTF8.self)
}
