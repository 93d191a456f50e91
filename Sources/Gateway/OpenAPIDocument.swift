// OpenAPIDocument: the OpenAPI 3.1 description of the gateway, generated from the topology so it
// cannot drift from the router: a tree of plain values (components, fixed paths, an operation
// per route) written as YAML by Yams.

import Choreo
import Yams

/// Builds `/openapi.yaml` from the routes of a topology.
public enum OpenAPIDocument {
    /// Fixed routes of every gateway besides the topology's.
    public static let fixedPaths = ["/healthz", "/readyz", "/metrics", "/openapi.yaml", "/v1/commands/{id}"]

    /// A YAML mapping.
    typealias Map = [String: Any]

    /// The document as YAML (keys sorted, `openapi` first).
    public static func yaml(for topology: Topology) -> String {
        var paths = fixedPathItems()
        for route in topology.routes {
            var item = paths[route.path] as? Map ?? [:]
            item[route.method.lowercased()] = operation(route)
            paths[route.path] = item
        }
        let document: Map = [
            "info": [
                "title": "Choreo gateway", "version": "1",
                "description": "Commands are accepted asynchronously (202) and their results polled or long-waited.",
            ],
            "components": components(), "security": [["apiKey": [String]()]], "paths": paths,
        ]
        // The version line first, as readers sniffing the format expect.
        let body = (try? Yams.dump(object: document, width: -1, sortKeys: true)) ?? ""
        return "openapi: 3.1.0\n" + body
    }

    /// `components:`: the bearer scheme, the Problem, Accepted and Command schemas, and a
    /// response per problem status.
    static func components() -> Map {
        let status: Map = ["type": "string", "enum": ["accepted", "succeeded", "failed", "dead"]]
        let schemas: Map = [
            "Problem": [
                "type": "object", "required": ["type", "title", "status", "detail"],
                "properties": [
                    "type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"],
                    "detail": ["type": "string"], "instance": ["type": "string"],
                    "errors": [
                        "type": "array",
                        "items": [
                            "type": "object",
                            "properties": ["field": ["type": "string"], "message": ["type": "string"]],
                        ] as Map,
                    ] as Map,
                ] as Map,
            ] as Map,
            "Accepted": [
                "type": "object", "required": ["id", "status", "links"],
                "properties": [
                    "id": ["type": "string"], "status": status,
                    "links": ["type": "object", "properties": ["self": ["type": "string"]]] as Map,
                ] as Map,
            ] as Map,
            "Command": [
                "type": "object", "required": ["id", "type", "status"],
                "properties": [
                    "id": ["type": "string"], "type": ["type": "string"], "status": status, "result": Map(),
                    "error": Map(), "submittedAt": ["type": "string", "format": "date-time"],
                    "completedAt": ["type": "string", "format": "date-time"], "links": ["type": "object"],
                ] as Map,
            ] as Map,
        ]
        let problems: [(String, String)] = [
            ("400", "Malformed request"), ("401", "Missing or unknown API key"),
            ("403", "Key not allowed for this route"), ("404", "Not found"), ("413", "Body too large"),
            ("415", "Body is not application/json"), ("422", "Validation failed"),
            ("429", "Rate limited (see Retry-After)"),
            ("503", "No live worker or lag over the limit (see Retry-After)"),
            ("504", "The service did not answer in time"),
        ]
        var responses: Map = [:]
        for (code, text) in problems {
            responses["P\(code)"] =
                [
                    "description": text,
                    "content": ["application/problem+json": ["schema": reference("schemas/Problem")]] as Map,
                ] as Map
        }
        return [
            "securitySchemes": ["apiKey": ["type": "http", "scheme": "bearer"]] as Map, "schemas": schemas,
            "responses": responses,
        ]
    }

    /// `{$ref: '#/components/<path>'}`.
    static func reference(_ path: String) -> Map { ["$ref": "#/components/\(path)"] }

    /// A response per status code: a reference to the shared problem response.
    static func problemResponses(_ codes: [String]) -> Map {
        var responses: Map = [:]
        for code in codes { responses[code] = reference("responses/P\(code)") }
        return responses
    }

    /// A JSON response with `schema`.
    static func json(_ description: String, schema: Map) -> Map {
        ["description": description, "content": ["application/json": ["schema": schema]] as Map]
    }

    /// The paths every gateway serves besides the topology's routes.
    static func fixedPathItems() -> Map {
        func plain(_ summary: String, _ responses: Map) -> Map {
            ["get": ["summary": summary, "security": [Any](), "responses": responses] as Map]
        }
        func text(_ description: String, _ type: String) -> Map {
            ["200": ["description": description, "content": [type: ["schema": ["type": "string"]]]] as Map]
        }
        var command = problemResponses(["400", "401", "404"])
        command["200"] = json("terminal", schema: reference("schemas/Command"))
        command["202"] = json("still accepted", schema: reference("schemas/Command"))
        return [
            "/healthz": plain("Process alive", ["200": ["description": "ok"]]),
            "/readyz": plain(
                "Redis reachable and every routed service has a live worker",
                ["200": ["description": "ready"], "503": ["description": "not ready"]]),
            "/metrics": plain("Prometheus metrics", text("metrics", "text/plain")),
            "/openapi.yaml": plain("This document", text("document", "application/yaml")),
            "/v1/commands/{id}": [
                "get": [
                    "summary": "A command's status; long-waits with Prefer wait=N or ?wait=N",
                    "parameters": [
                        ["name": "id", "in": "path", "required": true, "schema": ["type": "string"]] as Map,
                        ["name": "wait", "in": "query", "required": false, "schema": ["type": "number", "minimum": 0]]
                            as Map,
                        ["name": "Prefer", "in": "header", "required": false, "schema": ["type": "string"]] as Map,
                    ],
                    "responses": command,
                ] as Map
            ] as Map,
        ]
    }

    /// One route's operation: summary, id, path parameters, body schema, responses.
    static func operation(_ route: RouteDefinition) -> Map {
        var operation: Map = [
            "summary": route.summary.isEmpty ? "\(route.type) (\(route.service))" : route.summary,
            "operationId": route.type,
        ]
        if !route.pathParameters.isEmpty {
            operation["parameters"] = route.pathParameters.map { name -> Map in
                ["name": name, "in": "path", "required": true, "schema": ["type": "string"]]
            }
        }
        if route.method == "POST" {
            operation["requestBody"] =
                [
                    "required": true, "content": ["application/json": ["schema": schema(route.body)]] as Map,
                ] as Map
            var responses = problemResponses(["400", "401", "403", "413", "415", "422", "429", "503"])
            responses["202"] = json("accepted", schema: reference("schemas/Accepted"))
            operation["responses"] = responses
        } else {
            var responses = problemResponses(["401", "403", "404", "422", "429", "503", "504"])
            responses["200"] = json("the service's answer", schema: Map())
            operation["responses"] = responses
        }
        return operation
    }

    /// The schema of a body: an object without other properties.
    static func schema(_ fields: [String: FieldSpec]) -> Map {
        var schema: Map = ["type": "object", "additionalProperties": false]
        let required = fields.filter(\.value.required).keys.sorted()
        if !required.isEmpty { schema["required"] = required }
        if !fields.isEmpty { schema["properties"] = fields.mapValues(property) }
        return schema
    }

    /// The schema of one field, with its limits.
    static func property(_ spec: FieldSpec) -> Map {
        switch spec.type {
        case .string, .email, .uuid:
            var schema: Map = ["type": "string", "maxLength": spec.max ?? 10_000]
            if spec.type == .email { schema["format"] = "email" }
            if spec.type == .uuid { schema["format"] = "uuid" }
            if let min = spec.min { schema["minLength"] = min }
            return schema
        case .integer:
            var schema: Map = ["type": "integer"]
            if let min = spec.min { schema["minimum"] = min }
            if let max = spec.max { schema["maximum"] = max }
            return schema
        case .boolean:
            return ["type": "boolean"]
        case .array:
            var schema: Map = ["type": "array", "maxItems": spec.max ?? 1000, "items": spec.items.map(schema) ?? Map()]
            if let min = spec.min { schema["minItems"] = min }
            return schema
        case .object:
            return spec.items.map(schema) ?? ["type": "object"]
        }
    }
}
