import Foundation
import Testing
import TestSupport

/// tools/netns_scaling.sh (issue 11 item 3) on a small case: 2 workers in network namespaces on
/// 100 Mbit/s tbf-shaped links, the star against the same 2 workers under 1 aggregator. Only
/// what cannot be flaky is asserted — no times: both designs end with `train`'s parameters, the
/// coordinator's traffic is what the cost model counts and is smaller under the aggregator, the
/// traffic went through the shaped links, the table is printed, and nothing (namespace or
/// process) outlives the script, neither after a run nor when it is stopped midway. Needs root
/// and iproute2 (ip, tc): without them the test fails, naming the package.
@Suite(.serialized) struct NamespaceScalingTests {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/netns_scaling.sh").path

    /// 2 workers, star and 1 aggregator, links of `mbit` Mbit/s; a small MLP (P = 134,154
    /// floats: 256 → 256 → 256 → 10), 32-sample steps of 4 units, 3 steps.
    static func small(mbit: Int) -> [String] {
        [
            "--workers", "2", "--per-aggregator", "2", "--mbit", String(mbit), "--hidden", "256, 256", "--input", "1, 16, 16",
            "--batch", "32", "--ghost-batch", "8", "--steps", "3", "--timeout", "40",
        ]
    }

    /// ip and tc, or nil after recording why the test cannot run here.
    static func iproute2() -> String? {
        let found = ["ip", "tc"].map { name in
            ExternalProgram.which(name) ?? ["/usr/sbin/\(name)", "/sbin/\(name)"].first(where: FileManager.default.isExecutableFile)
        }
        guard let ip = found[0], found[1] != nil else {
            Issue.record("ip and tc are not installed: `make test-deps` installs them (Debian iproute2)")
            return nil
        }
        guard getuid() == 0 else {
            Issue.record("network namespaces and tc need root (CI runs as root)")
            return nil
        }
        return ip
    }

    /// The script, in the background, its output in `log`. The test runner's threads block most
    /// signals and a child inherits the mask: the script starts with none blocked, or the SIGTERM
    /// that its trap answers (and `timeout` sends its processes) would never arrive.
    static func start(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? output.close() }
        process.standardOutput = output
        process.standardError = output
        var none = sigset_t(), previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        return process
    }

    /// Waits up to `seconds` for the script; then SIGTERM (its trap cleans up), 15 s later SIGKILL.
    /// Whether it ended by itself.
    static func finish(_ process: Process, within seconds: Double) -> Bool {
        func wait(_ seconds: Double) {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        }
        wait(seconds)
        guard process.isRunning else { return true }
        kill(process.processIdentifier, SIGTERM)
        wait(15)
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return false
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The namespaces the script announced (`namespaces ssgdscPID-*`) that still exist, and the
    /// processes whose command line names them or the work folder.
    static func leftovers(of output: String, work: String, ip: String) throws -> (namespaces: [String], processes: [String]) {
        let tag = try #require(output.split(separator: "\n").compactMap { line -> Substring? in
            guard let range = line.range(of: "namespaces ") else { return nil }
            return line[range.upperBound...].split(separator: "-").first
        }.first, "the script did not name its namespaces: \(output)")
        let list = try ExternalProgram.run(ip, ["netns", "list"]).output
        let namespaces = list.split(separator: "\n").map(String.init).filter { $0.hasPrefix(tag + "-") }
        var processes = [String]()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
            guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let command = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
            if command.contains(work) || command.contains(tag + "-") { processes.append("\(entry): \(command)") }
        }
        return (namespaces, processes)
    }

    @Test func theToolMeasuresStarAndAggregatorInShapedNamespacesWithTrainsBits() throws {
        guard let ip = Self.iproute2() else { return }
        guard let shellcheck = ExternalProgram.which("shellcheck") else {
            Issue.record("shellcheck is not installed: `make test-deps` installs it (Debian shellcheck)")
            return
        }
        let lint = try ExternalProgram.run(shellcheck, ["--shell=bash", Self.script])
        #expect(lint.status == 0, "shellcheck tools/netns_scaling.sh:\n\(lint.output)")

        let work = Fixtures.temporaryDirectory("ssgd-netns-scaling")
        let script = try Self.start(["--ssgd", SSGDProcess.binary, "--work-dir", work] + Self.small(mbit: 100), log: work + "/script.log")
        let ended = Self.finish(script, within: 50)
        let output = Self.read(work + "/script.log")
        #expect(ended && script.terminationStatus == 0, "\(output)")

        // The same parameters as one process, bit for bit, in both designs.
        let expected = try #require(SSGDProcess.parametersHash(runDirectory: work + "/train"), "\(output)")
        for design in ["star", "tree"] {
            #expect(SSGDProcess.parametersHash(runDirectory: work + "/w2-\(design)") == expected, "\(design): \(output)")
        }

        // The table: a row per design; MB per step at the coordinator, measured and predicted.
        #expect(output.contains("| W | design | step s | predicted step s |"), "\(output)")
        func megabytes(_ design: String) throws -> (measured: Double, predicted: Double) {
            let row = try #require(output.split(separator: "\n").first { $0.hasPrefix("| 2 | \(design) |") }, "\(output)")
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            try #require(cells.count == 9, "\(row)")
            return (try #require(Double(cells[7]), "\(row)"), try #require(Double(cells[8]), "\(row)"))
        }
        let star = try megabytes("star")
        let tree = try megabytes("1 aggregator(s)")
        #expect(tree.measured < star.measured, "the coordinator moved \(tree.measured) MB per step under an aggregator, \(star.measured) MB in the star")
        // Bytes are counted, not timed: the star sends P to 2 workers and gets 2 blocks back
        // (4 × 0.537 MB), the aggregator's coordinator sends P once and gets 1 block (2 × 0.537 MB);
        // the frames' headers and sample indices add a little.
        let copy = 4 * 134_154 / 1e6
        #expect(abs(star.predicted - 4 * copy) < 0.006 && abs(tree.predicted - 2 * copy) < 0.006, "\(star) \(tree)")
        for (design, bytes) in [("star", star), ("tree", tree)] {
            #expect(bytes.measured >= bytes.predicted - 0.006 && bytes.measured < bytes.predicted * 1.05, "\(design): \(bytes)")
        }

        // The traffic crossed the shaped links: the coordinator's switch port is a 100 Mbit/s tbf
        // that sent it at least 3 steps of gradient blocks (2 copies in the star, 1 under the aggregator).
        for (design, blocks) in [("star", 2.0), ("tree", 1.0)] {
            let text = (try? String(contentsOfFile: work + "/w2-\(design)-tc.txt", encoding: .utf8)) ?? ""
            #expect(text.contains("tbf") && text.contains("rate 100Mbit"), "\(design): \(text)")
            let sent = text.split(separator: "\n").first { $0.contains("Sent ") }
                .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) } ?? 0
            #expect(sent > 3 * blocks * copy * 1e6, "\(design): the coordinator's port sent \(sent) bytes: \(text)")
        }

        let (namespaces, processes) = try Self.leftovers(of: output, work: work, ip: ip)
        #expect(namespaces.isEmpty, "namespaces left: \(namespaces)")
        #expect(processes.isEmpty, "processes left: \(processes)")
    }

    /// Stopped while its processes train, the script stops them and deletes its namespaces.
    @Test func stoppedMidRunTheToolLeavesNoNamespaceOrProcess() throws {
        guard let ip = Self.iproute2() else { return }
        let work = Fixtures.temporaryDirectory("ssgd-netns-scaling-stop")
        let log = work + "/script.log"
        // Slow links (1 Mbit/s: a parameter copy takes over 4 s) keep the star's run going.
        let script = try Self.start(["--ssgd", SSGDProcess.binary, "--work-dir", work] + Self.small(mbit: 1), log: log)
        defer { if script.isRunning { kill(script.processIdentifier, SIGKILL) } }
        let coordinatorLog = work + "/w2-star-coordinator.log"
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline && script.isRunning && !Self.read(coordinatorLog).contains("joined (2 live") {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(script.isRunning, "the script ended early: \(Self.read(log))")
        #expect(Self.read(coordinatorLog).contains("joined (2 live"), "\(Self.read(coordinatorLog))\n\(Self.read(log))")
        // SIGTERM now; had the trap not ended the script within 15 s, SIGKILL (not an exit).
        #expect(!Self.finish(script, within: 0), "\(Self.read(log))")
        #expect(script.terminationReason == .exit && script.terminationStatus == 130, "\(script.terminationStatus): \(Self.read(log))")
        let (namespaces, processes) = try Self.leftovers(of: Self.read(log), work: work, ip: ip)
        #expect(namespaces.isEmpty, "namespaces left: \(namespaces)")
        #expect(processes.isEmpty, "processes left: \(processes)")
    }
}
