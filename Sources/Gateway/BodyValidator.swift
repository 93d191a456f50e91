// BodyValidator: checks a JSON body against a route's field specs from streams.yml: required
// fields, exact types (no coercion), sizes, unknown fields; collects every field error.

import Choreo
import ChoreoJSON
import Foundation

/// Validates request bodies against ``FieldSpec``s.
public enum BodyValidator {
    /// The field errors of `value` against `fields` (empty when valid).
    public static func errors(_ value: JSONValue, fields: [String: FieldSpec], path: String = "") -> [Problem
        .FieldError]
    {
        guard case .object(let object) = value else {
            return [Problem.FieldError(field: path.isEmpty ? "(body)" : path, message: "must be a JSON object")]
        }
        var errors: [Problem.FieldError] = []
        for name in object.keys.sorted() where fields[name] == nil {
            errors.append(Problem.FieldError(field: join(path, name), message: "unknown field"))
        }
        for (name, spec) in fields.sorted(by: { $0.key < $1.key }) {
            let at = join(path, name)
            guard let item = object[name], item != .null else {
                if spec.required { errors.append(Problem.FieldError(field: at, message: "is required")) }
                continue
            }
            errors += check(item, spec, at)
        }
        return errors
    }

    static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    static func check(_ value: JSONValue, _ spec: FieldSpec, _ at: String) -> [Problem.FieldError] {
        func fail(_ message: String) -> [Problem.FieldError] { [Problem.FieldError(field: at, message: message)] }
        switch (spec.type, value) {
        case (.string, .string(let text)), (.email, .string(let text)), (.uuid, .string(let text)):
            if text.utf8.contains(0) { return fail("must not contain the NUL character (U+0000)") }
            let length = text.count
            if let min = spec.min, length < min { return fail("must be at least \(min) characters") }
            if length > (spec.max ?? 10_000) { return fail("must be at most \(spec.max ?? 10_000) characters") }
            if spec.type == .email, !isEmail(text) { return fail("must be an email address") }
            if spec.type == .uuid, UUID(uuidString: text) == nil { return fail("must be a UUID") }
            return []
        case (.integer, .integer(let number)):
            if let min = spec.min, number < min { return fail("must be at least \(min)") }
            if let max = spec.max, number > max { return fail("must be at most \(max)") }
            return []
        case (.boolean, .bool):
            return []
        case (.array, .array(let items)):
            if let min = spec.min, items.count < min { return fail("must have at least \(min) items") }
            if items.count > (spec.max ?? 1000) { return fail("must have at most \(spec.max ?? 1000) items") }
            guard let itemFields = spec.items else { return nulErrors(value, at) }
            return items.enumerated().flatMap { index, item in errors(item, fields: itemFields, path: "\(at)[\(index)]")
            }
        case (.object, .object):
            return spec.items.map { errors(value, fields: $0, path: at) } ?? nulErrors(value, at)
        default:
            let expected = spec.type == .email || spec.type == .uuid ? "string" : spec.type.rawValue
            return fail(
                "must be \(expected == "integer" || expected == "object" || expected == "array" ? "an" : "a") \(expected), not \(value.typeName)"
            )
        }
    }

    /// Errors for NUL characters (U+0000) anywhere in a free-form value, keys included: no
    /// store downstream can keep them (Postgres text cannot hold NUL).
    static func nulErrors(_ value: JSONValue, _ at: String) -> [Problem.FieldError] {
        switch value {
        case .string(let text) where text.utf8.contains(0):
            return [Problem.FieldError(field: at, message: "must not contain the NUL character (U+0000)")]
        case .array(let items):
            return items.enumerated().flatMap { index, item in nulErrors(item, "\(at)[\(index)]") }
        case .object(let object):
            return object.sorted(by: { $0.key < $1.key }).flatMap { key, item in
                key.utf8.contains(0)
                    ? [Problem.FieldError(field: at, message: "has a key with the NUL character (U+0000)")]
                    : nulErrors(item, join(at, key))
            }
        default:
            return []
        }
    }

    /// A pragmatic email check: one @, a non-empty local part, a dotted domain, no spaces.
    public static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
            !parts[1].hasSuffix("."), text.count <= 254
        else { return false }
        return !text.contains { $0.isWhitespace || $0.isNewline }
    }
}
