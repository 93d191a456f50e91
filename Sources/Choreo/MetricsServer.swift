// MetricsServer: a minimal HTTP endpoint serving the process's Prometheus metrics at /metrics,
// on its own thread (worker processes run no HTTP framework).

import Foundation
import Logging
import Metrics
import Prometheus
import Synchronization

/// Serves `GET /metrics` in the Prometheus text format from a registry (and `GET /healthz`), one
/// request at a time.
public final class MetricsServer: Sendable {
    /// The registry that is exported.
    public let registry: PrometheusCollectorRegistry
    /// The TCP port it listens on.
    public let port: Int
    private let socket: Int32

    /// Bootstraps swift-metrics with a Prometheus registry (once per process) and binds
    /// `host:port` (port 0 picks a free one). Throws if the port cannot be bound.
    public init(host: String = "0.0.0.0", port: Int) throws {
        let registry = MetricsServer.sharedRegistry
        self.registry = registry
        let fd = Foundation.socket(AF_INET, PlatformSocket.stream, 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0, listen(fd, 64) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError(description: "cannot listen for metrics on \(host):\(port): \(reason)")
        }
        self.socket = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// An error starting the server.
    public struct MetricsServerError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Backends beside the Prometheus registry, and whether the metrics system is bootstrapped.
    private static let backends = Mutex<(extra: [any MetricsFactory], bootstrapped: Bool)>(([], false))

    /// Adds a metrics backend beside the Prometheus registry (e.g. OTLP export): every metric
    /// goes to both. Only before the first metric is made (call it at process start); false when
    /// that is too late.
    @discardableResult
    public static func addBackend(_ factory: any MetricsFactory) -> Bool {
        backends.withLock { state in
            guard !state.bootstrapped else { return false }
            state.extra.append(factory)
            return true
        }
    }

    /// The process-wide registry, installed as the swift-metrics backend on first use (with
    /// any backend added by ``addBackend(_:)`` beside it).
    public static let sharedRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        let extra = backends.withLock { state -> [any MetricsFactory] in
            state.bootstrapped = true
            return state.extra
        }
        MetricsSystem.bootstrap(extra.isEmpty ? factory : MultiplexMetricsHandler(factories: [factory] + extra))
        return registry
    }()

    /// Serves requests until the process exits. Blocks: run it on its own thread.
    public func run() {
        while true {
            let client = accept(socket, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request = [UInt8](repeating: 0, count: 4096)
            let received = recv(client, &request, request.count, 0)
            let line = received > 0 ? String(decoding: request[0..<received], as: UTF8.self) : ""
            let response: [UInt8]
            if line.hasPrefix("GET /metrics") {
                let body = registry.emitToBuffer()
                response =
                    Array(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                            .utf8) + body
            } else if line.hasPrefix("GET /healthz") {
                // Liveness for container health checks and Kubernetes probes.
                response = Array(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"ok\"}"
                        .utf8)
            } else {
                response = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
            }
            response.withUnsafeBytes { bytes in
                _ = send(client, bytes.baseAddress, bytes.count, PlatformSocket.sendFlags)
            }
            close(client)
        }
    }
}
