import Foundation
import Testing
import TestSupport

// Checks of deploy/ (DESIGN §7): shell scripts parse and pass shellcheck, YAML
// parses and the Kubernetes objects reference each other consistently (rendered with
// `kubectl kustomize`), the systemd units verify, the Containerfile
// matches the libraries ssgd links, the entrypoint resumes or starts a run, and every `ssgd`
// command line in deploy/ and docs/deploy.md uses only flags the built binary accepts.

// MARK: - Helpers

enum Deploy {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var deploy: URL { root.appendingPathComponent("deploy") }

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func read(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }

    /// Every regular file under deploy/, as paths relative to the repository root.
    static func files() -> [String] {
        let manager = FileManager.default
        guard let walker = manager.enumerator(atPath: deploy.path) else { return [] }
        var result = [String]()
        while let next = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let full = deploy.appendingPathComponent(next).path
            if manager.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                result.append("deploy/" + next)
            }
        }
        return result.sorted()
    }

    /// Shell scripts: *.sh, *.sbatch, or a file starting with a bash/sh shebang.
    static func shellScripts() throws -> [String] {
        try files().filter { file in
            if file.hasSuffix(".sh") || file.hasSuffix(".sbatch") { return true }
            let head = try read(file).prefix(40)
            return head.hasPrefix("#!/bin/bash") || head.hasPrefix("#!/bin/sh") || head.hasPrefix("#!/usr/bin/env bash")
        }
    }

    static func yamlFiles() -> [String] { files().filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") } }

    static func which(_ name: String) -> String? { ExternalProgram.which(name) }

    typealias Result = ExternalProgram.Result

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    input: String? = nil, directory: String? = nil) throws -> Result {
        try ExternalProgram.run(executable, arguments, environment: environment, input: input, directory: directory)
    }

    /// All YAML documents of `text`, via PyYAML, as JSON values (nil documents dropped).
    static func parseYAML(_ text: String) throws -> [Any] {
        let script = """
            import json, sys, yaml
            docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
            print(json.dumps(docs))
            """
        let python = which("python3") ?? "/usr/bin/python3"
        let result = try run(python, ["-c", script], input: text)
        guard result.status == 0 else { throw DeployTestError("YAML does not parse:\n\(result.output)") }
        guard let docs = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [Any] else {
            throw DeployTestError("python3 printed no JSON list")
        }
        return docs
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "ssgd-deploy-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: ssgd flags

    /// The long flags `ssgd help SUBCOMMAND` lists under OPTIONS.
    static func acceptedFlags(_ subcommand: String) throws -> Set<String> {
        let result = try run(SSGDProcess.binary, ["help", subcommand])
        guard result.status == 0 else { throw DeployTestError("ssgd help \(subcommand) failed: \(result.output)") }
        var flags = Set<String>()
        var inOptions = false
        for line in result.output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("OPTIONS:") { inOptions = true; continue }
            guard inOptions else { continue }
            let trimmed = line.drop(while: { $0 == " " })
            guard trimmed.hasPrefix("-"), line.hasPrefix("  ") else { continue }
            // The flag column ends at the first double space ("--config <config>   Experiment…").
            let column = trimmed.range(of: "  ").map { String(trimmed[..<$0.lowerBound]) } ?? String(trimmed)
            for flag in matches(#"--[a-z][a-z0-9-]*"#, in: column) { flags.insert(flag) }
        }
        return flags
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        let range = NSRange(text.startIndex..., in: text)
        return regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } }
    }

    static func groups(_ pattern: String, in text: String) -> [[String]] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        let range = NSRange(text.startIndex..., in: text)
        return regex.matches(in: text, range: range).map { match in
            (0..<match.numberOfRanges).map { index in
                Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
            }
        }
    }

    static let subcommands = "coordinator|worker|keygen|status|launch|train|export|report|data|model"

    /// One `ssgd SUBCOMMAND …` found in a file, with the flags it passes.
    struct CommandLine: CustomStringConvertible {
        let file: String
        let subcommand: String
        let flags: [String]
        var description: String { "\(file): ssgd \(subcommand) \(flags.joined(separator: " "))" }
    }

    /// The `ssgd` command lines of a shell script, unit file or Markdown text: logical lines
    /// (backslash continuations joined) naming ssgd (or "$SSGD", "$SSGD_BIN", the entrypoint)
    /// and a subcommand, cut at the next `;`, `&&`, `||` or `|`. Flags of a bash array expanded
    /// on the line ("${name[@]}") are those of every `name=(…)` / `name+=(…)` in the file.
    static func commandLines(file: String, text: String) -> [CommandLine] {
        let logical = text.replacingOccurrences(of: "\\\n", with: " ")
        var arrays = [String: [String]]()
        for group in groups(#"(?m)\b([A-Za-z_][A-Za-z0-9_]*)\+?=\((.*)\)"#, in: logical) {
            arrays[group[1], default: []] += matches(#"(?<![\w-])--[a-z][a-z0-9-]*"#, in: group[2])
        }
        let launcher = #"(?:ssgd-entrypoint|entrypoint\.sh|"\$SSGD"|"\$SSGD_BIN"|\$SSGD_BIN|\$SSGD|\bssgd)"#
        var found = [CommandLine]()
        for line in logical.split(separator: "\n") {
            for group in groups(launcher + #""?[ \t]+("# + subcommands + #")\b([^\n]*)"#, in: String(line)) {
                var rest = group[2]
                for stop in [";", "&&", "||", " | ", "`"] {
                    if let cut = rest.range(of: stop) { rest = String(rest[..<cut.lowerBound]) }
                }
                var flags = matches(#"(?<![\w-])--[a-z][a-z0-9-]*"#, in: rest)
                for array in groups(#"\$\{([A-Za-z_][A-Za-z0-9_]*)\[@\]\}"#, in: rest) {
                    flags += arrays[array[1]] ?? []
                }
                found.append(CommandLine(file: file, subcommand: group[1], flags: flags))
            }
        }
        return found
    }
}

struct DeployTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Shell scripts

@Test func deployShellScriptsParseAndPassShellcheck() throws {
    let scripts = try Deploy.shellScripts()
    #expect(scripts.contains("deploy/slurm/ssgd.sbatch"))
    #expect(scripts.contains("deploy/container/entrypoint.sh"))
    for script in scripts {
        let result = try Deploy.run("/bin/bash", ["-n", Deploy.path(script)])
        #expect(result.status == 0, "bash -n \(script):\n\(result.output)")
        #expect(FileManager.default.isExecutableFile(atPath: Deploy.path(script)), "\(script) is not executable")
    }
    guard let shellcheck = Deploy.which("shellcheck") else {
        Issue.record("shellcheck is not installed: `make test-deps` installs it (Debian shellcheck)")
        return
    }
    for script in scripts {
        let result = try Deploy.run(shellcheck, ["--shell=bash", Deploy.path(script)])
        #expect(result.status == 0, "shellcheck \(script):\n\(result.output)")
    }
}

// MARK: - YAML and Kubernetes

@Test func deployYAMLFilesParse() throws {
    let files = Deploy.yamlFiles()
    #expect(files.count >= 5, "YAML files under deploy/: \(files)")
    for file in files {
        let docs = try Deploy.parseYAML(try Deploy.read(file))
        #expect(!docs.isEmpty, "\(file) holds no YAML document")
        guard file.hasPrefix("deploy/kubernetes/"), file != "deploy/kubernetes/config.yaml" else { continue }
        for case let doc as [String: Any] in docs {
            #expect(doc["apiVersion"] is String, "\(file): a document without apiVersion")
            #expect(doc["kind"] is String, "\(file): a document without kind")
        }
    }
    // The kustomization lists files that exist.
    let kustomization = try Deploy.parseYAML(try Deploy.read("deploy/kubernetes/kustomization.yaml")).first as? [String: Any]
    let resources = kustomization?["resources"] as? [String] ?? []
    #expect(resources.count >= 3)
    for resource in resources {
        #expect(FileManager.default.fileExists(atPath: Deploy.path("deploy/kubernetes/" + resource)), "missing \(resource)")
    }
}

/// The Kubernetes objects as applied: `kubectl kustomize` output (Debian's kubernetes-client
/// 1.20 reads the kustomization as well as a current kubectl does).
private func kubernetesObjects() throws -> [[String: Any]] {
    guard let kubectl = Deploy.which("kubectl") else {
        Issue.record("kubectl is not installed: `make test-deps` installs it (Debian kubernetes-client)")
        return []
    }
    let result = try Deploy.run(kubectl, ["kustomize", Deploy.path("deploy/kubernetes")])
    #expect(result.status == 0, "kubectl kustomize deploy/kubernetes:\n\(result.output)")
    return try Deploy.parseYAML(result.output).compactMap { $0 as? [String: Any] }
}

private func podSpec(_ object: [String: Any]) -> [String: Any] {
    ((object["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
}

private func firstContainer(_ object: [String: Any]) -> [String: Any] {
    (podSpec(object)["containers"] as? [[String: Any]])?.first ?? [:]
}

private func environment(_ container: [String: Any]) -> [String: String] {
    var values = [String: String]()
    for entry in container["env"] as? [[String: Any]] ?? [] {
        if let name = entry["name"] as? String, let value = entry["value"] as? String { values[name] = value }
    }
    return values
}

private func cpuString(_ value: Any?) -> String? {
    if let string = value as? String { return string }
    if let number = value as? NSNumber { return number.stringValue }
    return nil
}

@Test func kubernetesObjectsReferenceEachOther() throws {
    let objects = try kubernetesObjects()
    func one(_ kind: String) -> [String: Any]? { objects.first { $0["kind"] as? String == kind } }
    for object in objects {
        let name = (object["metadata"] as? [String: Any])?["name"] as? String
        #expect(object["apiVersion"] is String && object["kind"] is String && name != nil, "incomplete object \(object)")
    }
    let service = try #require(one("Service"))
    let statefulSet = try #require(one("StatefulSet"))
    let job = try #require(one("Job"))
    let serviceName = try #require((service["metadata"] as? [String: Any])?["name"] as? String)
    let serviceSpec = service["spec"] as? [String: Any] ?? [:]
    #expect(serviceSpec["clusterIP"] as? String == "None", "the Service is headless")
    let servicePort = try #require((serviceSpec["ports"] as? [[String: Any]])?.first?["port"] as? Int)

    // Coordinator: the StatefulSet governs the Service, its pods match its selector, it binds the port.
    let statefulSpec = statefulSet["spec"] as? [String: Any] ?? [:]
    #expect(statefulSpec["replicas"] as? Int == 1)
    #expect(statefulSpec["serviceName"] as? String == serviceName)
    let podLabels = ((statefulSpec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
    let selector = serviceSpec["selector"] as? [String: String] ?? [:]
    #expect(!selector.isEmpty)
    for (key, value) in selector { #expect(podLabels[key] == value, "Service selector \(key)=\(value) does not match the coordinator pods") }
    let coordinator = firstContainer(statefulSet)
    let coordinatorEnv = environment(coordinator)
    #expect((coordinator["args"] as? [String])?.first == "coordinator")
    #expect(coordinatorEnv["SSGD_BIND"]?.hasSuffix(":\(servicePort)") == true, "coordinator binds \(coordinatorEnv["SSGD_BIND"] ?? "nil")")
    let containerPorts = (coordinator["ports"] as? [[String: Any]] ?? []).compactMap { $0["containerPort"] as? Int }
    #expect(containerPorts.contains(servicePort))
    let claims = (statefulSpec["volumeClaimTemplates"] as? [[String: Any]] ?? []).compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
    let coordinatorMounts = coordinator["volumeMounts"] as? [[String: Any]] ?? []
    let runDir = try #require(coordinatorEnv["SSGD_RUN_DIR"])
    #expect(coordinatorMounts.contains { mount in
        claims.contains(mount["name"] as? String ?? "") && runDir.hasPrefix((mount["mountPath"] as? String ?? "/nowhere") + "/")
    }, "SSGD_RUN_DIR \(runDir) is not on the PersistentVolumeClaim")
    // The config file is in a mounted ConfigMap that exists.
    let configMaps = objects.filter { $0["kind"] as? String == "ConfigMap" }
        .compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
    let configPath = try #require(coordinatorEnv["SSGD_CONFIG"])
    let configVolume = (podSpec(statefulSet)["volumes"] as? [[String: Any]] ?? []).first { ($0["configMap"] as? [String: Any]) != nil }
    let configMapName = (configVolume?["configMap"] as? [String: Any])?["name"] as? String
    #expect(configMapName != nil && configMaps.contains(configMapName!), "ConfigMap \(configMapName ?? "nil") not among \(configMaps)")
    #expect(coordinatorMounts.contains { $0["name"] as? String == configVolume?["name"] as? String
        && configPath.hasPrefix(($0["mountPath"] as? String ?? "/nowhere") + "/") })

    // Workers: connect to the Service, as many as the coordinator waits for, cpu = threads.
    let jobSpec = job["spec"] as? [String: Any] ?? [:]
    let worker = firstContainer(job)
    let workerEnv = environment(worker)
    #expect((worker["args"] as? [String])?.first == "worker")
    let connect = try #require(workerEnv["SSGD_CONNECT"])
    let namespaceForms = ["tcp://\(serviceName):\(servicePort)"]
    #expect(namespaceForms.contains(connect) || connect.hasPrefix("tcp://\(serviceName).") && connect.hasSuffix(":\(servicePort)"),
            "worker connects to \(connect), the Service is \(serviceName):\(servicePort)")
    #expect(jobSpec["parallelism"] as? Int == Int(coordinatorEnv["SSGD_WORKERS"] ?? ""),
            "Job parallelism vs the coordinator's SSGD_WORKERS")
    for (name, container) in [("worker", worker), ("coordinator", coordinator)] {
        let threads = environment(container)["SSGD_THREADS"]
        let resources = container["resources"] as? [String: Any] ?? [:]
        let request = cpuString((resources["requests"] as? [String: Any])?["cpu"])
        let limit = cpuString((resources["limits"] as? [String: Any])?["cpu"])
        #expect(threads != nil && request == threads && limit == threads, "\(name): cpu request \(request ?? "nil"), limit \(limit ?? "nil"), SSGD_THREADS \(threads ?? "nil")")
    }

    // CURVE: both mount the same Secret; every key file named in the env is one of its items,
    // and every item is a key of the documented Secret.
    let example = try Deploy.parseYAML(try Deploy.read("deploy/kubernetes/curve-secret.example.yaml")).first as? [String: Any] ?? [:]
    let secretName = try #require((example["metadata"] as? [String: Any])?["name"] as? String)
    let secretKeys = Set(((example["stringData"] as? [String: Any]) ?? [:]).keys)
    #expect(secretKeys == ["coordinator.key", "coordinator.pub", "worker.key", "worker.pub"])
    let docs = try Deploy.read("docs/deploy.md")
    #expect(docs.contains("kubectl create secret generic \(secretName)"), "docs/deploy.md creates another Secret than \(secretName)")
    for key in secretKeys { #expect(docs.contains("--from-file=\(key)="), "docs/deploy.md does not put \(key) in the Secret") }
    let keyVariables = [("coordinator", statefulSet, ["SSGD_SECRET_KEY", "SSGD_ALLOW"]),
                        ("worker", job, ["SSGD_SECRET_KEY", "SSGD_SERVER_KEY"])]
    for (name, object, variables) in keyVariables {
        let container = firstContainer(object)
        let secretVolume = (podSpec(object)["volumes"] as? [[String: Any]] ?? []).first { $0["secret"] != nil }
        let secret = secretVolume?["secret"] as? [String: Any] ?? [:]
        #expect(secret["secretName"] as? String == secretName, "\(name) mounts Secret \(secret["secretName"] ?? "nil")")
        let items = secret["items"] as? [[String: Any]] ?? []
        for item in items { #expect(secretKeys.contains(item["key"] as? String ?? ""), "\(name): unknown Secret key \(item)") }
        let mount = (container["volumeMounts"] as? [[String: Any]] ?? []).first { $0["name"] as? String == secretVolume?["name"] as? String }
        let mountPath = try #require(mount?["mountPath"] as? String)
        let files = Set(items.compactMap { $0["path"] as? String }.map { mountPath + "/" + $0 })
        for variable in variables {
            let value = environment(container)[variable]
            #expect(value.map(files.contains) == true, "\(name): \(variable)=\(value ?? "nil") is not a mounted key file (\(files.sorted()))")
        }
    }
}

/// The coordinator pod serves /metrics where its scrape annotations and readiness probe look.
@Test func coordinatorPodIsScrapedAndReadyOnMetrics() throws {
    let objects = try kubernetesObjects()
    let statefulSet = try #require(objects.first { $0["kind"] as? String == "StatefulSet" })
    let template = (statefulSet["spec"] as? [String: Any])?["template"] as? [String: Any] ?? [:]
    let annotations = (template["metadata"] as? [String: Any])?["annotations"] as? [String: String] ?? [:]
    let coordinator = firstContainer(statefulSet)
    let ports = coordinator["ports"] as? [[String: Any]] ?? []
    let metricsPort = try #require(ports.first { $0["name"] as? String == "metrics" }?["containerPort"] as? Int,
                                   "the coordinator container has no port named metrics")
    #expect(annotations["prometheus.io/scrape"] == "true", "annotations \(annotations)")
    #expect(annotations["prometheus.io/port"] == String(metricsPort))
    #expect(annotations["prometheus.io/path"] == "/metrics")
    let env = environment(coordinator)
    let listen = try #require(env["SSGD_METRICS_LISTEN"])
    #expect(listen.hasSuffix(":\(metricsPort)"), "SSGD_METRICS_LISTEN \(listen) vs container port \(metricsPort)")
    // Prometheus and the kubelet reach the pod's address, not loopback: that needs the acknowledgement.
    #expect(listen.hasPrefix("127.") || env["SSGD_METRICS_INSECURE"] == "1", "SSGD_METRICS_LISTEN \(listen) without SSGD_METRICS_INSECURE=1")
    let probe = try #require((coordinator["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any],
                             "the readiness probe is not an httpGet")
    #expect(probe["path"] as? String == "/metrics")
    #expect(probe["port"] as? String == "metrics" || probe["port"] as? Int == metricsPort, "readiness probe port \(probe["port"] ?? "nil")")
    #expect(coordinator["startupProbe"] != nil, "readiness only counts after the startup probe (ZeroMQ bound)")
}

// MARK: - systemd

/// An INI file as (section, key, value) triples in order.
private func iniEntries(_ text: String) -> [(section: String, key: String, value: String)] {
    var section = ""
    var entries = [(section: String, key: String, value: String)]()
    for raw in text.split(separator: "\n") {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
        if line.hasPrefix("[") && line.hasSuffix("]") { section = String(line.dropFirst().dropLast()); continue }
        guard let equals = line.firstIndex(of: "=") else { continue }
        entries.append((section, String(line[..<equals]), String(line[line.index(after: equals)...])))
    }
    return entries
}

@Test func systemdUnitsHaveTheRequiredSettingsAndVerify() throws {
    let units = [("deploy/systemd/ssgd-coordinator.service", "coordinator"), ("deploy/systemd/ssgd-worker@.service", "worker")]
    let entrypointVariables = Set(Deploy.matches(#"SSGD_[A-Z_]+"#, in: try Deploy.read("deploy/container/entrypoint.sh")))
    for (unit, role) in units {
        let entries = iniEntries(try Deploy.read(unit))
        func values(_ key: String) -> [String] { entries.filter { $0.section == "Service" && $0.key == key }.map(\.value) }
        let execStart = values("ExecStart")
        #expect(execStart.count == 1, "\(unit): ExecStart \(execStart)")
        #expect(execStart.first.map { $0.hasPrefix("/usr/local/bin/ssgd-entrypoint \(role)") } == true, "\(unit): ExecStart \(execStart)")
        #expect(values("Restart") == ["on-failure"], "\(unit)")
        #expect(values("KillSignal") == ["SIGTERM"], "\(unit)")
        #expect(values("SuccessExitStatus").contains { $0.split(separator: " ").contains("130") }, "\(unit): a SIGTERM stop exits 130")
        #expect(values("NoNewPrivileges") == ["yes"] && values("ProtectSystem") == ["strict"] && values("PrivateTmp") == ["yes"], "\(unit)")
        #expect(!values("ReadWritePaths").isEmpty, "\(unit)")
        #expect(values("EnvironmentFile").contains("/etc/ssgd/ssgd.env"), "\(unit)")
        let stopSeconds = Int(values("TimeoutStopSec").first ?? "") ?? 0
        #expect(stopSeconds >= (role == "coordinator" ? 300 : 60), "\(unit): TimeoutStopSec \(stopSeconds) is short for a checkpoint")
        for entry in entries where entry.key == "Environment" {
            let name = String(entry.value.prefix { $0 != "=" })
            #expect(entrypointVariables.contains(name), "\(unit): the entrypoint does not read \(name)")
        }
    }
    // Every variable of the env file example (set or commented out) is one the entrypoint reads.
    let example = try Deploy.read("deploy/systemd/ssgd.env.example")
    let exampleVariables = Deploy.groups(#"(?m)^#?(SSGD_[A-Z_]+)="#, in: example).map { $0[1] }
    #expect(exampleVariables.count >= 8)
    for variable in exampleVariables { #expect(entrypointVariables.contains(variable), "ssgd.env.example: \(variable) is read by nothing") }

    guard let analyze = Deploy.which("systemd-analyze") else {
        Issue.record("systemd-analyze is not installed: `make test-deps` installs it (Debian systemd)")
        return
    }
    // systemd-analyze verify needs the executables to exist: point the units at the repository's
    // entrypoint, and instantiate the template.
    let folder = try Deploy.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for (unit, instance) in [("ssgd-coordinator.service", "ssgd-coordinator.service"), ("ssgd-worker@.service", "ssgd-worker@node1.service")] {
        let text = try Deploy.read("deploy/systemd/" + unit)
            .replacingOccurrences(of: "/usr/local/bin/ssgd-entrypoint", with: Deploy.path("deploy/container/entrypoint.sh"))
        try text.write(toFile: folder + "/" + unit, atomically: true, encoding: .utf8)
        if instance != unit { try text.write(toFile: folder + "/" + instance, atomically: true, encoding: .utf8) }
        let result = try Deploy.run(analyze, ["verify", "--man=no", "./" + instance], directory: folder)
        let complaints = result.output.split(separator: "\n").filter { $0.contains(instance) || $0.contains(unit) }
        #expect(result.status == 0 && complaints.isEmpty, "systemd-analyze verify \(unit):\n\(result.output)")
    }
}

// MARK: - Container

@Test func containerfileMatchesTheLinkedLibrariesAndTheRepository() throws {
    let text = try Deploy.read("deploy/container/Containerfile").replacingOccurrences(of: "\\\n", with: " ")
    let instructions = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    let arguments = Dictionary(Deploy.groups(#"(?m)^ARG ([A-Z_]+)=(\S+)"#, in: text).map { ($0[1], $0[2]) }, uniquingKeysWith: { a, _ in a })
    func resolve(_ value: String) -> String {
        var result = value
        for (key, argument) in arguments { result = result.replacingOccurrences(of: "${\(key)}", with: argument) }
        return result
    }
    // Stages: a Swift bookworm builder, a Debian bookworm runtime.
    let stages = instructions.filter { $0.hasPrefix("FROM ") }.map { resolve(String($0.dropFirst(5))) }
    #expect(stages.count == 2, "stages: \(stages)")
    #expect(stages.first.map { $0.hasPrefix("swift:6.") && $0.contains("-bookworm") } == true, "builder: \(stages)")
    #expect(stages.last.map { $0.hasPrefix("debian:bookworm") } == true, "runtime: \(stages)")
    let runtimeStart = try #require(instructions.lastIndex { $0.hasPrefix("FROM ") })
    let build = instructions[..<runtimeStart].joined(separator: "\n")
    let runtime = instructions[runtimeStart...].joined(separator: "\n")

    // The builder installs the Makefile's packages (but the data set); the runtime no -dev package.
    let makefile = try Deploy.read("Makefile")
    let packages = try #require(Deploy.groups(#"(?m)^PACKAGES := (.*)$"#, in: makefile).first?[1])
        .split(separator: " ").map(String.init).filter { !$0.hasPrefix("dataset-") }
    #expect(packages.count >= 4)
    for package in packages { #expect(build.contains(" \(package)"), "the build stage does not install \(package)") }
    #expect(!runtime.contains("-dev"), "the runtime stage installs a -dev package")
    // Every library the system-library modules link has its runtime package.
    let runtimePackage = ["openblas": "libopenblas0", "lapacke": "liblapacke", "zmq": "libzmq5", "z": "zlib1g", "crypto": "libssl3"]
    var linked = [String]()
    for module in ["CBLAS", "CZMQ", "CZlib", "CCrypto"] {
        let map = try Deploy.read("Sources/\(module)/module.modulemap")
        linked += Deploy.groups(#"link "([^"]+)""#, in: map).map { $0[1] }
    }
    #expect(Set(linked) == Set(runtimePackage.keys), "linked libraries: \(linked)")
    for library in linked {
        let package = try #require(runtimePackage[library])
        #expect(Deploy.matches(#"(?<![\w.-])\#(package)(?![\w.-])"#, in: runtime).count >= 1, "runtime stage lacks \(package) for -l\(library)")
    }

    // COPY sources exist in the repository (a glob may match nothing); the entrypoint is where
    // ENTRYPOINT runs it; the image does not run as root.
    var copied = [String: String]()
    for copy in instructions.filter({ $0.hasPrefix("COPY ") && !$0.contains("--from=") }) {
        let words = copy.split(separator: " ").dropFirst().map(String.init)
        for source in words.dropLast() where !source.contains("[") {
            #expect(FileManager.default.fileExists(atPath: Deploy.path(source)), "COPY \(source): not in the repository")
            copied[source] = words.last
        }
    }
    let entrypointTarget = try #require(copied["deploy/container/entrypoint.sh"])
    let entrypoint = try #require(instructions.last { $0.hasPrefix("ENTRYPOINT ") })
    let form = try JSONSerialization.jsonObject(with: Data(entrypoint.dropFirst("ENTRYPOINT ".count).utf8)) as? [String]
    #expect(form == [entrypointTarget], "ENTRYPOINT \(entrypoint) vs COPY target \(entrypointTarget)")
    let user = try #require(instructions.last { $0.hasPrefix("USER ") })
    #expect(!user.hasSuffix(" root") && !user.hasSuffix(" 0") && !user.contains(" 0:"), "USER \(user)")
    #expect(instructions.contains("STOPSIGNAL SIGTERM"))
}

// MARK: - The entrypoint

@Test func entrypointStartsResumesAndProtectsKeys() throws {
    let folder = try Deploy.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // A stand-in for ssgd that prints its arguments, one per line.
    let stub = folder + "/ssgd-stub"
    try "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n".write(toFile: stub, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub)
    let keygen = try Deploy.run(SSGDProcess.binary, ["keygen", "--output", folder + "/keys", "--name", "coordinator"])
    #expect(keygen.status == 0, "\(keygen.output)")
    // A mounted secret is often group-readable: the entrypoint must hand ssgd a private copy.
    try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: folder + "/keys/coordinator.key")
    let runDir = folder + "/run"
    let entrypoint = Deploy.path("deploy/container/entrypoint.sh")
    let base = ["SSGD_BIN": stub, "SSGD_RUN_DIR": runDir, "TMPDIR": folder, "SSGD_CONFIG": "/cfg.yaml"]

    var environment = base
    environment["SSGD_SECRET_KEY"] = folder + "/keys/coordinator.key"
    environment["SSGD_ALLOW"] = folder + "/keys/coordinator.pub"
    let fresh = try Deploy.run(entrypoint, ["coordinator", "--max-steps", "2"], environment: environment)
    #expect(fresh.status == 0, "\(fresh.output)")
    let freshArguments = fresh.output.split(separator: "\n").map(String.init)
    #expect(freshArguments.first == "coordinator")
    #expect(freshArguments.contains("--config") && freshArguments.contains("/cfg.yaml") && freshArguments.contains("--run-dir"))
    #expect(!freshArguments.contains("--resume"))
    #expect(freshArguments.suffix(2) == ["--max-steps", "2"], "extra arguments go last: \(freshArguments)")
    let keyIndex = try #require(freshArguments.firstIndex(of: "--curve-secret-key"))
    let keyCopy = freshArguments[keyIndex + 1]
    #expect(keyCopy != folder + "/keys/coordinator.key")
    let mode = try FileManager.default.attributesOfItem(atPath: keyCopy)[.posixPermissions] as? Int
    #expect(mode == 0o600, "the key copy has mode \(String(mode ?? 0, radix: 8))")
    #expect(try String(contentsOfFile: keyCopy, encoding: .utf8) == String(contentsOfFile: folder + "/keys/coordinator.key", encoding: .utf8))
    let check = try Deploy.run(SSGDProcess.binary, ["help", "coordinator"])
    #expect(check.status == 0)

    // With a checkpoint the run is resumed; with a summary it is not started at all.
    try FileManager.default.createDirectory(atPath: runDir + "/checkpoints", withIntermediateDirectories: true)
    try "x".write(toFile: runDir + "/config.yaml", atomically: true, encoding: .utf8)
    try "x".write(toFile: runDir + "/checkpoints/step-000000050.ckpt", atomically: true, encoding: .utf8)
    var insecure = base
    insecure["SSGD_INSECURE"] = "1"
    insecure["SSGD_METRICS_LISTEN"] = "0.0.0.0:9464"
    insecure["SSGD_METRICS_INSECURE"] = "1"
    let resumed = try Deploy.run(entrypoint, ["coordinator"], environment: insecure)
    let resumedArguments = resumed.output.split(separator: "\n").map(String.init)
    #expect(resumed.status == 0)
    #expect(resumedArguments.contains("--resume") && resumedArguments.contains(runDir) && resumedArguments.contains("--insecure"), "\(resumedArguments)")
    let metricsIndex = try #require(resumedArguments.firstIndex(of: "--metrics-listen"), "\(resumedArguments)")
    #expect(resumedArguments[metricsIndex + 1] == "0.0.0.0:9464" && resumedArguments.contains("--metrics-insecure"))
    #expect(!freshArguments.contains("--metrics-listen"), "metrics are off without SSGD_METRICS_LISTEN")
    #expect(!resumedArguments.contains("--config"))
    try "{}".write(toFile: runDir + "/summary.json", atomically: true, encoding: .utf8)
    let finished = try Deploy.run(entrypoint, ["coordinator"], environment: insecure)
    #expect(finished.status == 0 && !finished.output.contains("--resume"), "\(finished.output)")

    // A worker needs SSGD_CONNECT; SSGD_ROLE works as well as the argument.
    let missing = try Deploy.run(entrypoint, ["worker"], environment: base)
    #expect(missing.status != 0 && missing.output.contains("SSGD_CONNECT"))
    let worker = try Deploy.run(entrypoint, [], environment: base.merging(["SSGD_ROLE": "worker", "SSGD_CONNECT": "tcp://c:5555", "SSGD_THREADS": "3"]) { $1 })
    let workerArguments = worker.output.split(separator: "\n").map(String.init)
    #expect(workerArguments.first == "worker" && workerArguments.contains("tcp://c:5555"))
    let threadsIndex = try #require(workerArguments.firstIndex(of: "--threads"))
    #expect(workerArguments[threadsIndex + 1] == "3")

    // What the entrypoint passes is accepted by the real binary.
    for (subcommand, arguments) in [("coordinator", freshArguments), ("coordinator", resumedArguments), ("worker", workerArguments)] {
        let accepted = try Deploy.acceptedFlags(subcommand)
        for flag in arguments where flag.hasPrefix("--") {
            #expect(accepted.contains(flag), "entrypoint passes \(flag) to ssgd \(subcommand)")
        }
    }
}

// MARK: - ssgd command lines

@Test func everySSGDCommandLineUsesRealFlags() throws {
    var commands = [Deploy.CommandLine]()
    let textFiles = Deploy.files().filter { !$0.hasSuffix(".yaml") } + ["docs/deploy.md"]
    for file in textFiles {
        commands += Deploy.commandLines(file: file, text: try Deploy.read(file))
    }
    // Container args and probe commands of the Kubernetes objects.
    for file in Deploy.yamlFiles() where file.hasPrefix("deploy/kubernetes/") {
        for case let object as [String: Any] in try Deploy.parseYAML(try Deploy.read(file)) {
            for container in podSpec(object)["containers"] as? [[String: Any]] ?? [] {
                if let args = container["args"] as? [String], let role = args.first {
                    commands.append(.init(file: file, subcommand: role, flags: args.filter { $0.hasPrefix("--") }))
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    let command = ((container[probe] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String] ?? []
                    if command.first == "ssgd", command.count > 1 {
                        commands.append(.init(file: file, subcommand: command[1], flags: command.filter { $0.hasPrefix("--") }))
                    }
                }
            }
        }
    }
    // Enough was found that the check means something.
    for (file, subcommand) in [("deploy/slurm/ssgd.sbatch", "coordinator"), ("deploy/slurm/ssgd.sbatch", "worker"),
                               ("deploy/slurm/ssgd.sbatch", "keygen"), ("deploy/container/entrypoint.sh", "coordinator"),
                               ("deploy/container/entrypoint.sh", "worker"), ("deploy/systemd/ssgd-worker@.service", "worker"),
                               ("docs/deploy.md", "coordinator"), ("docs/deploy.md", "worker"), ("docs/deploy.md", "status"),
                               ("docs/deploy.md", "keygen")] {
        #expect(commands.contains { $0.file == file && $0.subcommand == subcommand && !$0.flags.isEmpty },
                "no `ssgd \(subcommand) --…` found in \(file)")
    }
    let sbatchCoordinator = commands.first { $0.file == "deploy/slurm/ssgd.sbatch" && $0.subcommand == "coordinator" }
    let sbatchFlags = Set(sbatchCoordinator?.flags ?? [])
    let required: Set<String> = ["--resume", "--config", "--run-dir", "--bind", "--curve-allow"]
    #expect(required.isSubset(of: sbatchFlags),
            "the sbatch coordinator line: \(sbatchCoordinator?.description ?? "none")")
    var accepted = [String: Set<String>]()
    for command in commands {
        if accepted[command.subcommand] == nil { accepted[command.subcommand] = try Deploy.acceptedFlags(command.subcommand) }
        let flags = accepted[command.subcommand] ?? []
        #expect(flags.count >= 2, "ssgd help \(command.subcommand) lists no flags")
        for flag in command.flags {
            #expect(flags.contains(flag), "\(command.file): ssgd \(command.subcommand) has no \(flag) (\(command))")
        }
    }
}
