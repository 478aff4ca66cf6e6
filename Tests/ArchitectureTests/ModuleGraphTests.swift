import Foundation
import Testing

// The module graph of docs/ARCHITECTURE.md, enforced: every `import` in Sources/<Module> must be
// an edge listed here (or a system module). A new back-edge — Training importing Runs, Engine
// importing anything of ours, Wire importing ZeroMQ — fails this test; so does a module folder
// missing from the table, so the picture and the code cannot drift apart silently.

struct ModuleGraphTests {
    /// Our modules and what each may import (its direct dependencies in Package.swift).
    static let allowed: [String: Set<String>] = [
        "CBLAS": [], "CZMQ": [], "CZlib": [], "CProcess": [], "CCrypto": [], "CSharedMemory": [],
        "Engine": ["CBLAS"],
        "Data": ["Engine", "CZlib", "CCrypto"],
        "Training": ["Engine", "Data", "Yams"],
        "Runs": ["Training", "Data", "Engine"],
        "Study": ["Runs", "Training", "Data", "Engine", "Yams"],
        "Bench": ["Training", "Data", "Engine"],
        "Wire": ["Engine"],
        "Transport": ["Wire", "CZMQ", "CSharedMemory"],
        "Cluster": ["Runs", "Training", "Data", "Engine", "Wire", "Transport", "CProcess"],
        "Monitoring": ["Training", "Transport", "Prometheus"],
        "SSGDCommands": ["Engine", "Data", "Training", "Runs", "Study", "Bench", "Wire", "Transport", "Cluster", "Monitoring", "ArgumentParser"],
        "ssgd": ["SSGDCommands"],
    ]

    /// Toolchain modules any file may import.
    static let system: Set<String> = ["Foundation", "Glibc", "Darwin", "Dispatch", "Synchronization", "Testing"]

    static var sources: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
    }

    /// Modules named by the import lines of Swift source text: `import X`, `@testable import X`,
    /// `public import X`, `import struct X.Y`.
    static func importedModules(in text: String) -> [String] {
        let kinds: Set<Substring> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
        return text.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard let index = words.firstIndex(of: "import"), index <= 1, index + 1 < words.count else { return nil }
            let target = kinds.contains(words[index + 1]) && index + 2 < words.count ? words[index + 2] : words[index + 1]
            return String(target.split(separator: ".")[0])
        }
    }

    /// "FILE imports X" for each import of `module`'s files that the table does not allow.
    static func violations(module: String, files: [(name: String, text: String)]) -> [String] {
        let allowed = Self.allowed[module] ?? []
        return files.flatMap { file in
            importedModules(in: file.text).filter { !system.contains($0) && !allowed.contains($0) }
                .map { "\(module)/\(file.name) imports \($0)" }
        }
    }

    static func files(of module: String) throws -> [(name: String, text: String)] {
        let folder = sources.appendingPathComponent(module)
        guard let names = FileManager.default.enumerator(atPath: folder.path) else { return [] }
        return try names.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }.map {
            ($0, try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8))
        }
    }

    @Test func everyModuleFolderIsInTheTable() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).filter { !$0.hasPrefix(".") }
        let missing = folders.filter { Self.allowed[$0] == nil }
        #expect(missing.isEmpty, "Sources/\(missing) not in ModuleGraphTests.allowed: add the module and its allowed imports (and to docs/ARCHITECTURE.md)")
        #expect(folders.count >= 11)
    }

    @Test func everyImportIsAnAllowedEdge() throws {
        var violations = [String]()
        var imports = 0
        for module in Self.allowed.keys {
            let files = try Self.files(of: module)
            imports += files.map { Self.importedModules(in: $0.text).count }.reduce(0, +)
            violations += Self.violations(module: module, files: files)
        }
        #expect(violations.isEmpty, "imports against the module graph (docs/ARCHITECTURE.md): \(violations)")
        #expect(imports > 50, "found only \(imports) imports: is the Sources path right?")
    }

    /// The table itself must be a DAG: dependencies point one way.
    @Test func theAllowedGraphHasNoCycle() {
        var state = [String: Int]()  // 1 visiting, 2 done
        func visit(_ node: String) -> Bool {
            if state[node] == 2 { return true }
            if state[node] == 1 { return false }
            state[node] = 1
            for next in Self.allowed[node] ?? [] where !visit(next) { return false }
            state[node] = 2
            return true
        }
        for node in Self.allowed.keys { #expect(visit(node), "cycle through \(node)") }
    }

    /// The detector works: a back-edge is reported, allowed and system imports are not.
    @Test func aBackEdgeIsReported() {
        let text = "import Engine\n@testable import Runs\nimport struct Foundation.Date\nlet important = 1\n"
        #expect(Self.importedModules(in: text) == ["Engine", "Runs", "Foundation"])
        #expect(Self.violations(module: "Training", files: [("Trainer.swift", text)]) == ["Training/Trainer.swift imports Runs"])
        #expect(Self.violations(module: "Study", files: [("Report.swift", text)]).isEmpty)
        #expect(Self.violations(module: "Wire", files: [("Codec.swift", "import CZMQ\n")]) == ["Wire/Codec.swift imports CZMQ"])
    }
}
