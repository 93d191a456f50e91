// OpenAPIDocument: the OpenAPI 3.1 description of the gateway, generated from the topology so it
// cannot drift from the router.

import Choreo

/// Builds `/openapi.yaml` from the routes of a topology.
public enum OpenAPIDocument {
    /// Fixed routes of every gateway besides the topology's.
    public static let fixedPaths = ["/healthz", "/readyz", "/metrics", "/openapi.yaml", "/v1/commands/{id}"]

    /// The document as YAML: the shared components, the fixed paths, then the topology's routes.
    public static func yaml(for topology: Topology) -> String {
        var lines = components() + ["security: [{apiKey: []}]", "paths:"] + fixedPathLines
        var byPath: [String: [RouteDefinition]] = [:]
        for route in topology.routes { byPath[route.path, default: []].append(route) }
        for path in byPath.keys.sorted() {
            lines.append("  \(path):")
            for route in byPath[path] ?? [] { lines += operation(route) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The header and `components:` (the Problem, Accepted and Command schemas, a response per
    /// problem status).
    static func components() -> [String] {
        var lines: [String] = [
            "openapi: 3.1.0",
            "info:",
            "  title: Choreo gateway",
            "  version: \"1\"",
            "  description: Commands are accepted asynchronously (202) and their results polled or long-waited.",
            "components:",
            "  securitySchemes:",
            "    apiKey: {type: http, scheme: bearer}",
            "  schemas:",
            "    Problem:",
            "      type: object",
            "      required: [type, title, status, detail]",
            "      properties:",
            "        type: {type: string}",
            "        title: {type: string}",
            "        status: {type: integer}",
            "        detail: {type: string}",
            "        instance: {type: string}",
            "        errors:",
            "          type: array",
            "          items: {type: object, properties: {field: {type: string}, message: {type: string}}}",
            "    Accepted:",
            "      type: object",
            "      required: [id, status, links]",
            "      properties:",
            "        id: {type: string}",
            "        status: {type: string, enum: [accepted, succeeded, failed, dead]}",
            "        links: {type: object, properties: {self: {type: string}}}",
            "    Command:",
            "      type: object",
            "      required: [id, type, status]",
            "      properties:",
            "        id: {type: string}",
            "        type: {type: string}",
            "        status: {type: string, enum: [accepted, succeeded, failed, dead]}",
            "        result: {}",
            "        error: {}",
            "        submittedAt: {type: string, format: date-time}",
            "        completedAt: {type: string, format: date-time}",
            "        links: {type: object}",
            "  responses:",
        ]
        let problems: [(String, String)] = [
            ("400", "Malformed request"), ("401", "Missing or unknown API key"),
            ("403", "Key not allowed for this route"),
            ("404", "Not found"), ("413", "Body too large"), ("415", "Body is not application/json"),
            ("422", "Validation failed"), ("429", "Rate limited (see Retry-After)"),
            ("503", "No live worker or lag over the limit (see Retry-After)"),
            ("504", "The service did not answer in time"),
        ]
        for (code, text) in problems {
            lines += [
                "    P\(code):", "      description: \(text)",
                "      content: {application/problem+json: {schema: {$ref: '#/components/schemas/Problem'}}}",
            ]
        }
        return lines
    }

    /// The paths every gateway serves besides the topology's routes.
    static let fixedPathLines: [String] = [
        "  /healthz:", "    get: {summary: Process alive, security: [], responses: {'200': {description: ok}}}",
        "  /readyz:",
        "    get: {summary: Redis reachable and every routed service has a live worker, security: [], responses: {'200': {description: ready}, '503': {description: not ready}}}",
        "  /metrics:",
        "    get: {summary: Prometheus metrics, security: [], responses: {'200': {description: metrics, content: {text/plain: {schema: {type: string}}}}}}",
        "  /openapi.yaml:",
        "    get: {summary: This document, security: [], responses: {'200': {description: document, content: {application/yaml: {schema: {type: string}}}}}}",
        "  /v1/commands/{id}:",
        "    get:",
        "      summary: A command's status; long-waits with Prefer wait=N or ?wait=N",
        "      parameters:",
        "        - {name: id, in: path, required: true, schema: {type: string}}",
        "        - {name: wait, in: query, required: false, schema: {type: number, minimum: 0}}",
        "        - {name: Prefer, in: header, required: false, schema: {type: string}}",
        "      responses:",
        "        '200': {description: terminal, content: {application/json: {schema: {$ref: '#/components/schemas/Command'}}}}",
        "        '202': {description: still accepted, content: {application/json: {schema: {$ref: '#/components/schemas/Command'}}}}",
        "        '400': {$ref: '#/components/responses/P400'}",
        "        '401': {$ref: '#/components/responses/P401'}",
        "        '404': {$ref: '#/components/responses/P404'}",
    ]

    /// One route's operation: summary, id, path parameters, body schema, responses.
    static func operation(_ route: RouteDefinition) -> [String] {
        var lines: [String] = []
        lines.append("    \(route.method.lowercased()):")
        lines.append(
            "      summary: \(quote(route.summary.isEmpty ? "\(route.type) (\(route.service))" : route.summary))"
        )
        lines.append("      operationId: \(route.type)")
        if !route.pathParameters.isEmpty {
            lines.append("      parameters:")
            for name in route.pathParameters {
                lines.append("        - {name: \(name), in: path, required: true, schema: {type: string}}")
            }
        }
        if route.method == "POST" {
            lines += [
                "      requestBody:", "        required: true", "        content:",
                "          application/json:", "            schema:",
            ]
            lines += schema(route.body, indent: 14)
            lines += [
                "      responses:",
                "        '202': {description: accepted, content: {application/json: {schema: {$ref: '#/components/schemas/Accepted'}}}}",
            ]
            for code in ["400", "401", "403", "413", "415", "422", "429", "503"] {
                lines.append("        '\(code)': {$ref: '#/components/responses/P\(code)'}")
            }
        } else {
            lines += [
                "      responses:",
                "        '200': {description: the service's answer, content: {application/json: {schema: {}}}}",
            ]
            for code in ["401", "403", "404", "422", "429", "503", "504"] {
                lines.append("        '\(code)': {$ref: '#/components/responses/P\(code)'}")
            }
        }
        return lines
    }

    static func quote(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func schema(_ fields: [String: FieldSpec], indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        var lines = ["\(pad)type: object", "\(pad)additionalProperties: false"]
        let required = fields.filter(\.value.required).keys.sorted()
        if !required.isEmpty { lines.append("\(pad)required: [\(required.joined(separator: ", "))]") }
        if fields.isEmpty { return lines }
        lines.append("\(pad)properties:")
        for (name, spec) in fields.sorted(by: { $0.key < $1.key }) {
            lines.append("\(pad)  \(name):")
            lines += property(spec, indent: indent + 4)
        }
        return lines
    }

    static func property(_ spec: FieldSpec, indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        switch spec.type {
        case .string, .email, .uuid:
            var lines = ["\(pad)type: string"]
            if spec.type == .email { lines.append("\(pad)format: email") }
            if spec.type == .uuid { lines.append("\(pad)format: uuid") }
            if let min = spec.min { lines.append("\(pad)minLength: \(min)") }
            lines.append("\(pad)maxLength: \(spec.max ?? 10_000)")
            return lines
        case .integer:
            var lines = ["\(pad)type: integer"]
            if let min = spec.min { lines.append("\(pad)minimum: \(min)") }
            if let max = spec.max { lines.append("\(pad)maximum: \(max)") }
            return lines
        case .boolean:
            return ["\(pad)type: boolean"]
        case .array:
            var lines = ["\(pad)type: array", "\(pad)maxItems: \(spec.max ?? 1000)"]
            if let min = spec.min { lines.append("\(pad)minItems: \(min)") }
            lines.append("\(pad)items:")
            lines += spec.items.map { schema($0, indent: indent + 2) } ?? ["\(pad)  {}"]
            return lines
        case .object:
            return spec.items.map { schema($0, indent: indent) } ?? ["\(pad)type: object"]
        }
    }
}
