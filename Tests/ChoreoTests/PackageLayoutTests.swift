// PackageLayoutTests: the checkout must be usable on a case-insensitive file system (macOS's
// default), where two paths that differ only by letter case land in one folder.

import ChoreoTesting
import Foundation
import Testing

@Suite struct PackageLayoutTests {
    @Test func noTwoTrackedPathsDifferOnlyByCase() throws {
        let paths = try Self.trackedPaths()
        #expect(paths.count > 100, "expected the repository's files, found \(paths.count)")
        #expect(Self.caseCollisions(paths).isEmpty, "paths that differ only by case: \(Self.caseCollisions(paths))")
    }

    /// The check itself finds a collision (the one this package once had), in a file or in a
    /// folder name on the way to it.
    @Test func theCaseCheckFindsACollision() {
        let collisions = Self.caseCollisions([
            "Sources/Choreo/Service.swift", "Sources/choreo/Choreo.swift", "README.md", "readme/notes.md",
        ])
        #expect(collisions == [["Sources/Choreo", "Sources/choreo"]])
    }

    /// Every path and every folder on the way, grouped by lower-cased form; groups of two or
    /// more spellings are collisions.
    static func caseCollisions(_ paths: [String]) -> [[String]] {
        var spellings: [String: Set<String>] = [:]
        for path in paths {
            let parts = path.split(separator: "/")
            for end in parts.indices {
                let prefix = parts[...end].joined(separator: "/")
                spellings[prefix.lowercased(), default: []].insert(prefix)
            }
        }
        return spellings.values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }
    }

    /// `git ls-files` of the repository (every file under it, without `.build` and `.git`,
    /// where git is not available).
    static func trackedPaths() throws -> [String] {
        let root = TestEnvironment.repositoryRoot
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", root, "ls-files"]
        let output = Pipe()
        git.standardOutput = output
        git.standardError = FileHandle.nullDevice
        if (try? git.run()) != nil {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            git.waitUntilExit()
            if git.terminationStatus == 0 {
                return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
            }
        }
        let enumerator = FileManager.default.enumerator(atPath: root)
        var paths: [String] = []
        while let path = enumerator?.nextObject() as? String {
            if path.hasPrefix(".build") || path.hasPrefix(".git/") || path == ".git" { continue }
            paths.append(path)
        }
        return paths
    }
}
