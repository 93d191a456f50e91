// LogTracer: a swift-distributed-tracing Tracer that propagates W3C `traceparent` and writes each
// finished span as one JSON log line (trace id, span id, parent span id, name, kind, duration,
// status, attributes). Bootstrapped with CHOREO_TRACE=log; any other tracer (e.g. an OTLP
// exporter) can be bootstrapped instead, since the runtime and gateway only use the Tracing API.

import Foundation
import Instrumentation
import Logging
import Synchronization
import Tracing

/// A W3C trace context: trace id (32 hex), span id (16 hex), sampled flag.
public struct TraceParent: Sendable, Equatable {
    public var traceID: String
    public var spanID: String
    public var sampled: Bool

    /// Creates a trace context.
    public init(traceID: String, spanID: String, sampled: Bool = true) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses a `traceparent` header (`00-trace-span-flags`).
    public init?(header: String) {
        // Fixed layout: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 bytes; checked on the UTF-8 bytes
        // (this runs once per handled message when tracing is on).
        let bytes = Array(header.utf8)
        guard bytes.count == 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
            bytes[52] == UInt8(ascii: "-")
        else { return nil }
        let dash = UInt8(ascii: "-")
        guard bytes[0..<2].allSatisfy({ $0 != dash }), bytes[3..<35].allSatisfy({ $0 != dash }),
            bytes[36..<52].allSatisfy({ $0 != dash }), bytes[53..<55].allSatisfy({ $0 != dash }),
            bytes[3..<35].contains(where: { $0 != UInt8(ascii: "0") })
        else { return nil }
        self.init(
            traceID: String(decoding: bytes[3..<35], as: UTF8.self),
            spanID: String(decoding: bytes[36..<52], as: UTF8.self),
            sampled: !(bytes[53] == UInt8(ascii: "0") && bytes[54] == UInt8(ascii: "0")))
    }

    /// The `traceparent` header.
    public var header: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }
}

enum TraceParentKey: ServiceContextKey {
    typealias Value = TraceParent
    static let nameOverride: String? = "traceparent"
}

extension ServiceContext {
    /// The W3C trace context of the current span (or of the remote parent).
    public var traceParent: TraceParent? {
        get { self[TraceParentKey.self] }
        set { self[TraceParentKey.self] = newValue }
    }
}

/// A tracer that logs finished spans as JSON lines.
public final class LogTracer: Tracer, Sendable {
    let logger: Logger

    /// A tracer logging through `logger` (label `choreo.trace` by default).
    public init(logger: Logger = Logger(label: "choreo.trace")) {
        self.logger = logger
    }

    /// Bootstraps the process's tracer from `CHOREO_TRACE` (`log`: this tracer); once per process.
    public static func bootstrapFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) {
        if environment["CHOREO_TRACE"] == "log" { InstrumentationSystem.bootstrap(LogTracer()) }
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> LogSpan {
        var context = context()
        let parent = context.traceParent
        context.traceParent = TraceParent(
            traceID: parent?.traceID ?? Envelope.randomHex(16), spanID: Envelope.randomHex(8),
            sampled: parent?.sampled ?? true)
        return LogSpan(
            name: operationName, kind: kind, context: context, parentSpanID: parent?.spanID,
            start: instant().nanosecondsSinceEpoch, logger: logger)
    }

    public func forceFlush() {}

    public func extract<Carrier, Extract>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract: Extractor, Extract.Carrier == Carrier {
        if let header = extractor.extract(key: "traceparent", from: carrier), let parent = TraceParent(header: header) {
            context.traceParent = parent
        }
    }

    public func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        if let parent = context.traceParent { injector.inject(parent.header, forKey: "traceparent", into: &carrier) }
    }
}

/// A span of ``LogTracer``: logged when it ends.
public final class LogSpan: Span, Sendable {
    struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var status: SpanStatus?
        var errors: [String] = []
        var ended = false
    }

    public let context: ServiceContext
    let kind: SpanKind
    let parentSpanID: String?
    let start: UInt64
    let logger: Logger
    let state: Mutex<State>

    init(name: String, kind: SpanKind, context: ServiceContext, parentSpanID: String?, start: UInt64, logger: Logger) {
        self.context = context
        self.kind = kind
        self.parentSpanID = parentSpanID
        self.start = start
        self.logger = logger
        self.state = Mutex(State(name: name))
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    public var isRecording: Bool { state.withLock { !$0.ended } }

    public func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }

    public func addEvent(_ event: SpanEvent) {}

    public func addLink(_ link: SpanLink) {}

    public func recordError<Instant: TracerInstant>(
        _ error: Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        state.withLock { $0.errors.append("\(error)") }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let finished = state.withLock { state -> State? in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }
        guard let finished, let trace = context.traceParent else { return }
        var metadata: Logger.Metadata = [
            "trace_id": "\(trace.traceID)", "span_id": "\(trace.spanID)", "span_kind": "\(kind)",
            "duration_ms": "\(String(format: "%.3f", Double(instant().nanosecondsSinceEpoch &- start) / 1e6))",
        ]
        if let parentSpanID { metadata["parent_span_id"] = "\(parentSpanID)" }
        if let status = finished.status { metadata["status"] = "\(status.code)" }
        if !finished.errors.isEmpty { metadata["error"] = "\(finished.errors.joined(separator: "; "))" }
        let attributes = finished.attributes
        // swift-format-ignore: ReplaceForEachWithForLoop
        attributes.forEach { key, value in metadata["attr." + key] = "\(Self.text(value))" }
        logger.info("span \(finished.name)", metadata: metadata)
    }

    static func text(_ value: SpanAttribute) -> String {
        switch value {
        case .string(let text): return text
        case .int64(let number): return String(number)
        case .int32(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return String(flag)
        default: return "\(value)"
        }
    }
}
