// RedisBackend: the two kinds of Redis a test can run against: the standalone server and the
// Redis Cluster that ops/test started.

import Testing

/// Which Redis a parameterized test runs against.
public enum RedisBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// The standalone server (`CHOREO_TEST_REDIS_URL`).
    case standalone
    /// The 3-master, 3-replica cluster (`CHOREO_TEST_REDIS_CLUSTER_URL`).
    case cluster

    /// The URL to connect to.
    public var url: String {
        switch self {
        case .standalone: return TestEnvironment.redisURL
        case .cluster: return TestCluster.url
        }
    }

    public var testDescription: String { rawValue }
}
