// ChildProcess: spawning a child with posix_spawn, signals unblocked and at their defaults.

import Foundation

/// Spawns child processes. Uses posix_spawn directly, resetting the signal mask and
/// dispositions: threads of a Swift process block signals, and a child would inherit that
/// and ignore SIGTERM.
public enum ChildProcess {
    /// An error from posix_spawn.
    public struct SpawnError: Error, CustomStringConvertible {
        /// The program.
        public var path: String
        /// The errno text.
        public var reason: String
        public var description: String { "cannot start \(path): \(reason)" }
    }

    /// Starts `path` with `arguments` and returns its pid; `environment` replaces the
    /// inherited environment when given.
    public static func spawn(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws
        -> pid_t
    {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let env = environment.map { values in values.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in env ?? [] { free(pointer) } }
        #if canImport(Darwin)
            var attributes: posix_spawnattr_t? = nil
        #else
            var attributes = posix_spawnattr_t()
        #endif
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let status =
            env.map { posix_spawn(&pid, path, nil, &attributes, argv, $0) }
            ?? posix_spawn(&pid, path, nil, &attributes, argv, Self.environment)
        guard status == 0 else { throw SpawnError(path: path, reason: String(cString: strerror(status))) }
        return pid
    }

    /// The process's environment (`environ`; Darwin reaches it through `_NSGetEnviron`).
    private static var environment: UnsafePointer<UnsafeMutablePointer<CChar>?>? {
        #if canImport(Darwin)
            return UnsafePointer(_NSGetEnviron().pointee)
        #else
            return UnsafePointer(environ)
        #endif
    }

    /// Path of the running executable.
    public static var currentExecutable: String {
        #if os(Linux)
            if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
