// TopologyError: a problem in streams.yml, naming the file, the key path, the line and the fix.

/// A problem found while loading `streams.yml`. Renders as
/// `streams.yml:12: services.orders.policy.block: must be positive (got -1s)`.
public struct TopologyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the topology came from.
    public var file: String
    /// The dotted key path, e.g. `services.orders.consumes[1]`.
    public var path: String
    /// The 1-based line, when known.
    public var line: Int?
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(file: String, path: String, line: Int?, message: String) {
        self.file = file
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return path.isEmpty ? "\(location): \(message)" : "\(location): \(path): \(message)"
    }
}
