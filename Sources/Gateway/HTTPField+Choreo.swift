// HTTPField+Choreo: the header names the gateway reads and writes, built once (an
// `HTTPField.Name` made from a string validates it, which is not free per request).

import HTTPTypes

extension HTTPField.Name {
    /// `X-Request-Id`, echoed or generated per request.
    static let requestID = HTTPField.Name("X-Request-Id")!
    /// `traceparent` (W3C Trace Context).
    static let traceparent = HTTPField.Name("traceparent")!
    /// `Idempotency-Key` of a submission.
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// `Prefer` (RFC 7240), for `wait=N`.
    static let prefer = HTTPField.Name("Prefer")!
}
