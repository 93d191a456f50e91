import Choreo
import ChoreoTesting
import Foundation
import Testing

/// The deployment files, validated offline (no Docker engine or cluster on these machines):
/// `ops/validate-deploy.py` checks docker-compose.yml against the Compose specification,
/// ops/Dockerfile's shape, and ops/k8s against Kubernetes schemas and the topology.
@Suite("Deployment files")
struct DeploymentTests {
    static func validate(_ arguments: [String] = []) async throws -> CommandRun {
        let script = TestEnvironment.repositoryRoot + "/ops/validate-deploy.py"
        let base = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("deploy")
        let line = "exec python3 '\(script)' \(arguments.map { "'\($0)'" }.joined(separator: " ")) >'\(base).out' 2>&1"
        let pid = try ChildProcess.spawn("/bin/sh", ["-c", line])
        let status = try await waitForExit(pid, timeout: 120) ?? -1
        return CommandRun(
            status: status, output: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "", errors: "")
    }

    @Test("docker-compose.yml, ops/Dockerfile and ops/k8s are valid and match the topology")
    func repositoryFilesAreValid() async throws {
        let run = try await Self.validate()
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("0 problem(s)"), "\(run.output)")
    }

    @Test("the validator rejects a compose file that breaks the specification")
    func validatorIsNotVacuous() async throws {
        let path = TestEnvironment.workDirectory + "/" + TestEnvironment.uniqueName("compose") + ".yml"
        try "services:\n  users:\n    image: 3\n    depends_on:\n      x: {condition: whenever}\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let run = try await Self.validate(["--compose", path])
        #expect(run.status == 1)
        #expect(run.output.contains("services/users/image: 3 is not of type 'string'"), "\(run.output)")
        #expect(run.output.contains("no worker pool service 'orders'"), "\(run.output)")
    }
}
