// swift-tools-version: 6.1
// Choreo: choreographed microservices on Redis Streams, with Postgres per service.
import PackageDescription

let package = Package(
    name: "Choreo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "choreo", targets: ["ChoreoCLI"]),
        .library(name: "Choreo", targets: ["Choreo"]),
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "Postgres", targets: ["Postgres"]),
        .library(name: "ChoreoTesting", targets: ["ChoreoTesting"]),
        .library(name: "ChoreoTelemetry", targets: ["ChoreoTelemetry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.0.0"),
        .package(url: "https://github.com/GraphQLSwift/Graphiti.git", from: "3.0.0"),
        .package(url: "https://github.com/GraphQLSwift/GraphQL.git", from: "4.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.70.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        // OTLP/HTTP export only: the gRPC stack is not built.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "Redis", dependencies: ["CHiredis"]),
        // The one JSON grammar and writer of the package (hand-written: the hot paths' speed).
        .target(name: "ChoreoJSON"),
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .target(
            name: "Choreo",
            dependencies: [
                "Redis", "Postgres", "ChoreoJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "Choreo", "ChoreoJSON", "Redis",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Span export over OTLP/HTTP (swift-otel) for the gateway and the workers, switched on by
        // the standard OTEL_* variables; the runtime itself only speaks the Tracing API.
        .target(
            name: "ChoreoTelemetry",
            dependencies: [
                "Choreo",
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Operator tools over the runtime's Redis and Postgres state (status, saga traces, the
        // dead-letter set, ACLs), used by the CLI and the console, not by workers.
        .target(name: "Operations", dependencies: ["Choreo", "ChoreoJSON", "Redis", "Postgres"]),
        .target(name: "ChoreoTesting", dependencies: ["Redis", "Postgres", "Choreo", "Probe"]),
        .target(name: "Probe", dependencies: ["Choreo", "Postgres"]),
        // The reference system: one module per service, and the shop's cross-cutting parts
        // (GraphQL, the consistency checker, the load run).
        // The README's example service.
        .target(name: "Hello", dependencies: ["Choreo", "Postgres"]),
        // Every message type of the shop, defined once by the service that owns it.
        .target(name: "ShopContracts", dependencies: ["Choreo"]),
        .target(name: "Users", dependencies: ["Choreo", "Postgres", "ShopContracts"]),
        .target(name: "Inventory", dependencies: ["Choreo", "Postgres", "ShopContracts"]),
        .target(name: "Payments", dependencies: ["Choreo", "Postgres", "ShopContracts"]),
        .target(name: "Orders", dependencies: ["Choreo", "Postgres", "ShopContracts"]),
        .target(
            name: "Shop",
            dependencies: [
                "Choreo", "Postgres", "Gateway", "ShopContracts", "Users", "Inventory", "Payments", "Orders",
                .product(name: "Graphiti", package: "Graphiti"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .target(
            name: "Console",
            dependencies: [
                "Choreo", "Gateway", "Operations", "Redis", "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The `choreo` command. Its folder is not `Sources/choreo`: that differs from the
        // runtime's `Sources/Choreo` only by case, which a case-insensitive file system (macOS's
        // default) cannot hold.
        .executableTarget(
            name: "ChoreoCLI",
            dependencies: [
                "Choreo", "ChoreoJSON", "Redis", "Postgres", "Probe", "Gateway", "Shop", "Console", "Hello",
                "Operations", "ChoreoTelemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "JSONTests", dependencies: ["ChoreoJSON"]),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "ChoreoTesting"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "ChoreoTesting"]),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "Choreo", "ChoreoTesting", "Operations", "Redis", "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // The reference services' decisions, one message at a time (HandlerHarness: Postgres only).
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "Choreo", "ChoreoTesting", "Hello", "ShopContracts", "Users", "Inventory", "Payments", "Orders",
                "Postgres",
            ]),
        .testTarget(name: "ChoreoTests", dependencies: ["Choreo", "ChoreoTesting", "Operations", "Redis", "Postgres"]),
        .testTarget(
            name: "ShopTests",
            dependencies: [
                "Shop", "ShopContracts", "Choreo", "ChoreoTesting", "Gateway", "Operations", "Postgres", "Redis",
                "ChoreoTelemetry",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
