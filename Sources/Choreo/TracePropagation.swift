// TracePropagation: carries a span's context across Redis in the envelope's `traceparent`
// field, through whichever tracer the process bootstrapped (LogTracer, swift-otel's OTLP
// tracer, any other). Responsible for turning a stored header into a parent context and a live
// span's context back into a header, so the runtime and the gateway never depend on one
// tracer's context key.

import Instrumentation
import Tracing

/// W3C trace context in and out of the bootstrapped instrument.
public enum TracePropagation {
    /// A context whose remote parent is `traceparent` (empty, a new trace, when it is missing or
    /// malformed).
    public static func context(traceparent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        guard let traceparent, !traceparent.isEmpty else { return context }
        InstrumentationSystem.instrument.extract(
            ["traceparent": traceparent], into: &context, using: HeaderExtractor())
        return context
    }

    /// The `traceparent` header of `context` (a span's), nil when the instrument records none.
    public static func traceparent(of context: ServiceContext) -> String? {
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderInjector())
        return headers["traceparent"]
    }

    struct HeaderExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }

    struct HeaderInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key] = value
        }
    }
}
