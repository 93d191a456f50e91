// PlatformSocket: the socket constants that differ between Glibc and Darwin, in one place, so
// the package's few raw sockets (the metrics endpoint, the test helpers) build on both.

import Foundation

/// Socket constants whose Swift types differ by platform.
package enum PlatformSocket {
    /// `SOCK_STREAM` as the `Int32` `socket(2)` takes (an enum on Glibc, an `Int32` on Darwin).
    package static var stream: Int32 {
        #if canImport(Glibc)
            return Int32(SOCK_STREAM.rawValue)
        #else
            return SOCK_STREAM
        #endif
    }

    /// Flags for `send(2)` that keep a closed peer from raising SIGPIPE (`MSG_NOSIGNAL` on
    /// Linux; Darwin has no such flag: the processes ignore SIGPIPE and `send` reports EPIPE).
    package static var sendFlags: Int32 {
        #if canImport(Glibc)
            return Int32(MSG_NOSIGNAL)
        #else
            return 0
        #endif
    }
}
