// TCPProxy: a loopback TCP forwarder for tests that move a server behind an address the system
// already uses (a promoted replica taking over a dead master's address, as a failover's virtual
// IP or DNS name does), so the system under test is not told about the move.

import Choreo
import Foundation

/// Forwards connections on its own loopback port to a target port that can be changed.
public final class TCPProxy: @unchecked Sendable {
    /// The port clients connect to.
    public let port: Int
    /// `redis://127.0.0.1:port/0`.
    public var url: String { "redis://127.0.0.1:\(port)/0" }

    /// A socket call that failed while setting up the proxy.
    public struct Failure: Error, CustomStringConvertible {
        /// What failed.
        public var description: String
    }

    private let lock = NSLock()
    private let listener: Int32
    private var target: Int
    private var open: [Link] = []
    private var stopped = false

    /// One forwarded connection: the client's socket and the target's; both are closed once
    /// both directions ended.
    private final class Link: @unchecked Sendable {
        let client: Int32
        let upstream: Int32
        private let lock = NSLock()
        private var ended = 0

        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }

        /// Ends both directions (each copier then sees the end and calls ``copierEnded()``).
        func cut() {
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
        }

        func copierEnded() {
            cut()
            let last = lock.withLock {
                ended += 1
                return ended == 2
            }
            if last {
                close(client)
                close(upstream)
            }
        }
    }

    /// Listens on a free loopback port and forwards each connection to `target`.
    public init(target: Int) throws {
        self.target = target
        port = try freePort(in: 20_000..<32_000)
        listener = socket(AF_INET, PlatformSocket.stream, 0)
        guard listener >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 128) == 0 else {
            close(listener)
            throw Failure(description: "bind or listen on port \(port): errno \(errno)")
        }
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { stop() }

    /// Sends new connections to `port` and cuts every open one, so their clients reconnect
    /// (to the new target).
    public func redirect(to port: Int) {
        let links = lock.withLock {
            target = port
            defer { open.removeAll() }
            return open
        }
        for link in links { link.cut() }
    }

    /// Stops listening and cuts every open connection.
    public func stop() {
        let links = lock.withLock {
            guard !stopped else { return [Link]() }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            defer { open.removeAll() }
            return open
        }
        for link in links { link.cut() }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if lock.withLock({ stopped }) { return }
                continue
            }
            let port = lock.withLock { target }
            guard let upstream = Self.connect(to: port) else {
                close(client)
                continue
            }
            let link = Link(client: client, upstream: upstream)
            let accepted = lock.withLock {
                guard !stopped else { return false }
                open.append(link)
                return true
            }
            guard accepted else {
                close(client)
                close(upstream)
                return
            }
            Thread.detachNewThread { Self.copy(from: client, to: upstream, link: link) }
            Thread.detachNewThread { Self.copy(from: upstream, to: client, link: link) }
        }
    }

    private static func copy(from source: Int32, to destination: Int32, link: Link) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        copying: while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes {
                    send(destination, $0.baseAddress! + offset, count - offset, PlatformSocket.sendFlags)
                }
                guard written > 0 else { break copying }
                offset += written
            }
        }
        link.copierEnded()
    }

    private static func connect(to port: Int) -> Int32? {
        let fd = socket(AF_INET, PlatformSocket.stream, 0)
        guard fd >= 0 else { return nil }
        var address = loopback(port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
