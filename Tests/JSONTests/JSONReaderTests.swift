// JSONReaderTests: the package's one JSON grammar, table-driven over RFC 8259's cases (both
// modes: building and validating must agree), its limits (nesting, UTF-8, NUL, surrogates,
// duplicate keys, number range), and fuzzed against its own writer.

import ChoreoJSON
import Foundation
import Testing

@Suite("JSON reader and writer")
struct JSONReaderTests {
    static let valid: [(String, JSONValue)] = [
        ("null", .null), ("true", .bool(true)), ("false", .bool(false)),
        ("0", .integer(0)), ("-0", .integer(0)), ("42", .integer(42)), ("-17", .integer(-17)),
        ("9223372036854775807", .integer(.max)), ("-9223372036854775808", .integer(.min)),
        ("9223372036854775808", .number(9_223_372_036_854_775_808)), ("1.5", .number(1.5)), ("-0.25", .number(-0.25)),
        ("1e3", .number(1000)), ("1E+2", .number(100)), ("2e-1", .number(0.2)), ("0.0", .number(0)),
        (#""""#, .string("")), (#""abc""#, .string("abc")), (#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{8}\u{c}\n\r\t")),
        (#""\u0041\u00e9\u20AC""#, .string("Aé€")), (#""\ud83d\ude00""#, .string("😀")),
        (#""\u0000""#, .string("\u{0}")),
        ("\"é😀\"", .string("é😀")), ("[]", .array([])), ("{}", .object([:])),
        ("[1,[2,[3]]]", .array([.integer(1), .array([.integer(2), .array([.integer(3)])])])),
        (
            #"{"a":1,"b":[true,null],"c":{"d":"e"}}"#,
            .object(["a": .integer(1), "b": .array([.bool(true), .null]), "c": .object(["d": .string("e")])])
        ),
        (" \t\r\n[ 1 , 2 ]\n ", .array([.integer(1), .integer(2)])), (#"{"":0}"#, .object(["": .integer(0)])),
    ]

    static let invalid: [String] = [
        "", " ", "nul", "tru", "True", "NULL", "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "NaN", "Infinity",
        "1e999", "-1e999", "[", "]", "[1,]", "[,1]", "[1 2]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
        "{'a':1}", "'a'", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\uZZZZ\"", "\"\\ud83d\"", "\"\\ud83d\\u0041\"",
        "\"\\ude00\"", "\"a\u{1}b\"", "\"tab\there\"", "\"line\nbreak\"", "1 2", "[1]]", "{}{}", "null x",
        "{\"a\":1,\"a\":2}",
    ]

    @Test("every RFC 8259 form parses to its value, and validates")
    func validTexts() throws {
        for (text, expected) in Self.valid {
            #expect(try JSONValue.parse(text) == expected, "\(text)")
            #expect(JSONText.isValid(text), "\(text)")
        }
    }

    @Test("every malformed text is refused by both modes (a duplicate key only when building)")
    func invalidTexts() {
        for text in Self.invalid {
            #expect(throws: JSONError.self, "\(text)") { try JSONValue.parse(text) }
            if !text.contains("\"a\":1,\"a\"") { #expect(!JSONText.isValid(text), "\(text)") }
        }
        #expect(throws: JSONError(reason: "the body repeats a key: 'a' appears twice in one object")) {
            try JSONValue.parse(#"{"a":1,"a":2}"#)
        }
    }

    @Test("nesting is capped at 256 levels, and the cap is not a crash")
    func nestingLimit() throws {
        let deepest = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        #expect(JSONText.isValid(deepest))
        _ = try JSONValue.parse(deepest)
        let tooDeep = String(repeating: "[", count: 257) + String(repeating: "]", count: 257)
        #expect(!JSONText.isValid(tooDeep))
        #expect(throws: JSONError.self) { try JSONValue.parse(tooDeep) }
        let hostile = String(repeating: "[", count: 100_000)
        #expect(!JSONText.isValid(hostile))
    }

    @Test("invalid UTF-8 and raw NUL bytes are refused; escaped NUL is a character")
    func bytesLevelChecks() throws {
        for bytes: [UInt8] in [
            [34, 0xFF, 34], [34, 0xC3, 34], [34, 0xED, 0xA0, 0x80, 34], [34, 0xF8, 0x88, 0x80, 0x80, 0x80, 34],
            [34, 0, 34], [91, 0, 93], [0x22, 0x61, 0xC0, 0xAF, 0x22],
        ] {
            #expect(!bytes.withUnsafeBytes { JSONText.isValid(bytes: $0) }, "\(bytes)")
            #expect(throws: JSONError.self, "\(bytes)") { try bytes.withUnsafeBytes { try JSONValue.parse(bytes: $0) } }
        }
        #expect(try JSONValue.parse(#"["\u0000"]"#) == .array([.string("\u{0}")]))
    }

    @Test("the writer escapes what must be escaped; string arrays round-trip")
    func writerAndArrays() throws {
        let tricky = "q\"b\\s/\n\r\t\u{8}\u{c}\u{0}\u{1f}é😀"
        let text = JSONValue.string(tricky).text
        #expect(text == #""q\"b\\s/\n\r\t\b\f\u0000\u001fé😀""#)
        #expect(try JSONValue.parse(text) == .string(tricky))
        let strings = ["", "a", tricky, "[\"]", String(repeating: "x", count: 10_000)]
        #expect(JSONText.decodeArray(JSONText.array(strings)) == strings)
        #expect(JSONText.decodeArray(#"["a",1]"#) == nil)
        #expect(JSONText.decodeArray(#"{"a":"b"}"#) == nil)
        #expect(
            JSONValue.object(["b": .integer(1), "a": .null, "é": .bool(false)]).text == #"{"a":null,"b":1,"é":false}"#)
    }

    /// A random document of bounded depth.
    static func randomValue(_ random: inout SystemRandomNumberGenerator, depth: Int = 0) -> JSONValue {
        let pick = Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &random)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .integer(Int64.random(in: .min ... .max, using: &random))
        case 3: return .number(Double.random(in: -1e6...1e6, using: &random).rounded() + 0.5)
        case 4:
            let scalars = (0..<Int.random(in: 0..<12, using: &random)).map { _ in
                Unicode.Scalar(UInt32.random(in: 0...0x2FF, using: &random)).map(Character.init) ?? "x"
            }
            return .string(String(scalars))
        case 5:
            return .array(
                (0..<Int.random(in: 0..<5, using: &random)).map { _ in randomValue(&random, depth: depth + 1) })
        default:
            var object: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0..<5, using: &random) {
                object["k\(index)\(Int.random(in: 0..<3, using: &random))"] = randomValue(&random, depth: depth + 1)
            }
            return .object(object)
        }
    }

    static func reason(_ bytes: [UInt8]) -> String? {
        do {
            _ = try bytes.withUnsafeBytes { try JSONValue.parse(bytes: $0) }
            return nil
        } catch let error as JSONError {
            return error.reason
        } catch {
            return "\(error)"
        }
    }

    @Test("fuzz: written documents parse back equal; mutated bytes never crash, and both modes agree")
    func fuzz() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let value = Self.randomValue(&random)
            let text = value.text
            #expect(try JSONValue.parse(text) == value, "\(text)")
            var bytes = Array(text.utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: position)
                default: bytes.insert(Array("{}[]\",:\\0e-".utf8).randomElement(using: &random)!, at: position)
                }
            }
            let parsed = (try? bytes.withUnsafeBytes { try JSONValue.parse(bytes: $0) }) != nil
            let valid = bytes.withUnsafeBytes { JSONText.isValid(bytes: $0) }
            // Building also refuses a repeated key, which validating does not look for; short of
            // that, the two modes accept exactly the same texts.
            let shown = String(decoding: bytes, as: UTF8.self)
            if parsed { #expect(valid, "\(shown)") }
            if valid && !parsed, let error = Self.reason(bytes) {
                #expect(error.hasPrefix("the body repeats a key"), "\(shown): \(error)")
            }
        }
    }
}
