// MessageShape: the JSON shape of a message payload (which fields, which types, which are
// required), read off a Decodable type, and the comparison of a consumer's shape with a
// producer's that ``ContractCheck`` reports.

/// The JSON shape a `Decodable` type reads, as a plain value.
public indirect enum MessageShape: Sendable, Equatable, CustomStringConvertible {
    /// A JSON string.
    case string
    /// A JSON number without a fraction.
    case integer
    /// Any JSON number.
    case number
    /// `true` or `false`.
    case boolean
    /// An array whose elements have this shape.
    case array(MessageShape)
    /// An object with these fields.
    case object([String: Field])
    /// A shape that could not be read (custom decoding); compatible with anything.
    case unknown

    /// A field of an object: its shape, and whether the decoder requires it.
    public struct Field: Sendable, Equatable {
        /// The value's shape.
        public var shape: MessageShape
        /// `false` for an optional (the field may be absent or null).
        public var required: Bool

        /// Creates a field.
        public init(_ shape: MessageShape, required: Bool = true) {
            self.shape = shape
            self.required = required
        }
    }

    /// The shape `type` decodes, read by running its `init(from:)` against a recording
    /// decoder; `.unknown` where that is not possible.
    public static func of<T: Decodable>(_ type: T.Type) -> MessageShape {
        (try? ShapeDecoder.shape(of: type)) ?? .unknown
    }

    /// Where a consumer reading `self` would fail on, or misread, what a producer of
    /// `producer` writes: a field it requires that the producer omits or makes optional, or a
    /// field of another type. Empty when every message the producer can write decodes.
    public func mismatches(readingFrom producer: MessageShape, at path: String = "") -> [String] {
        switch (self, producer) {
        case (.unknown, _), (_, .unknown): return []
        case (.number, .integer): return []
        case (.array(let mine), .array(let theirs)):
            return mine.mismatches(readingFrom: theirs, at: path + "[]")
        case (.object(let mine), .object(let theirs)):
            var problems: [String] = []
            for (name, field) in mine.sorted(by: { $0.key < $1.key }) {
                let fieldPath = path.isEmpty ? name : "\(path).\(name)"
                guard let other = theirs[name] else {
                    if field.required { problems.append("'\(fieldPath)' is required but never sent") }
                    continue
                }
                if field.required && !other.required {
                    problems.append("'\(fieldPath)' is required but the producer may leave it out")
                }
                problems += field.shape.mismatches(readingFrom: other.shape, at: fieldPath)
            }
            return problems
        default:
            if self == producer { return [] }
            return ["'\(path.isEmpty ? "payload" : path)' is read as \(self) but sent as \(producer)"]
        }
    }

    public var description: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .number: return "number"
        case .boolean: return "boolean"
        case .array(let element): return "array of \(element)"
        case .object(let fields):
            let inner = fields.sorted { $0.key < $1.key }.map {
                "\($0.key)\($0.value.required ? "" : "?"): \($0.value.shape)"
            }
            return "{" + inner.joined(separator: ", ") + "}"
        case .unknown: return "unknown"
        }
    }
}
