import Data
import Engine
import Foundation
import Yams

// YAML in and out. One table lists every key once: how to read it, how to write it, and
// whether it belongs to the config hash (keys that change the training trajectory do; run
// control such as max_steps, threads or checkpoint cadence does not).

struct ConfigKey: Sendable {
    let name: String
    let hashed: Bool
    let read: @Sendable (inout TrainingConfig, Node) throws -> Void
    let write: @Sendable (TrainingConfig) -> String?
    /// For hashed keys added after runs already existed: at this value the key is left out of
    /// the trajectory hash, so those runs keep their hash (and their checkpoints stay usable).
    var unhashedDefault: String? = nil
    /// What the trajectory hash records instead of `write`, when set (nil: leave the key out).
    var hashText: (@Sendable (TrainingConfig) -> String?)? = nil
}

private func scalarText(_ node: Node, _ key: String) throws -> String {
    guard let scalar = node.scalar else { throw ConfigError(key: key, "expected a single value, got \(node)") }
    return scalar.string
}

private func readInt(_ node: Node, _ key: String) throws -> Int {
    let text = try scalarText(node, key)
    guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
        throw ConfigError(key: key, "expected a whole number, got '\(text)'")
    }
    return value
}

private func readDouble(_ node: Node, _ key: String) throws -> Double {
    let text = try scalarText(node, key)
    guard let value = Double(text), value.isFinite else {
        throw ConfigError(key: key, "expected a number, got '\(text)'")
    }
    return value
}

private func readString(_ node: Node, _ key: String) throws -> String { try scalarText(node, key) }

private func readEnum<E: RawRepresentable & CaseIterable>(_ node: Node, _ key: String) throws -> E
where E.RawValue == String {
    let text = try scalarText(node, key)
    guard let value = E(rawValue: text) else {
        let choices = E.allCases.map(\.rawValue).joined(separator: ", ")
        throw ConfigError(key: key, "unknown value '\(text)'; choose one of: \(choices)")
    }
    return value
}

private func readIntList(_ node: Node, _ key: String) throws -> [Int] {
    if let sequence = node.sequence { return try sequence.map { try readInt($0, key) } }
    // A flag override may say "1024,1024" or "[1024, 1024]".
    let text = try scalarText(node, key).trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
    if text.isEmpty { return [] }
    return try text.split(separator: ",").map {
        let item = $0.trimmingCharacters(in: .whitespaces)
        guard let value = Int(item) else { throw ConfigError(key: key, "expected whole numbers, got '\(item)'") }
        return value
    }
}

/// "250ms", "5s", "2m", "1h" or a bare number of seconds.
private func readSeconds(_ node: Node, _ key: String) throws -> Double {
    let text = try scalarText(node, key).trimmingCharacters(in: .whitespaces)
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value.isFinite {
            return value * scale
        }
    }
    guard let value = Double(text), value.isFinite else {
        throw ConfigError(key: key, "expected a duration such as 500ms, 5s or 2m, got '\(text)'")
    }
    return value
}

private func seconds(_ value: Double) -> String {
    value < 1 ? "\(Int((value * 1000).rounded()))ms" : "\(number(value).replacingOccurrences(of: ".0", with: ""))s"
}

private func number(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(format: "%.1f", value) }
    return "\(value)"
}

private func list(_ values: [Int]) -> String { "[" + values.map(String.init).joined(separator: ", ") + "]" }

private func quoted(_ text: String) -> String {
    let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    return "\"\(escaped)\""
}

extension TrainingConfig {
    static let keys: [ConfigKey] = [
        ConfigKey(name: "name", hashed: false, read: { $0.name = try readString($1, "name") }, write: { quoted($0.name) }),
        ConfigKey(name: "model", hashed: true, read: { $0.model = try readEnum($1, "model") }, write: { $0.model.rawValue }),
        ConfigKey(name: "hidden", hashed: true, read: { $0.hidden = try readIntList($1, "hidden") }, write: { list($0.hidden) }),
        ConfigKey(name: "depth", hashed: true, read: { $0.depth = try readInt($1, "depth") }, write: { "\($0.depth)" }),
        ConfigKey(name: "growth", hashed: true, read: { $0.growth = try readInt($1, "growth") }, write: { "\($0.growth)" }),
        // Hashed by effect: a model without Winograd layers (the MLP, a thin DenseNet) keeps its
        // hash, and im2col keeps the hash runs had before Winograd existed.
        ConfigKey(name: "conv_algorithm", hashed: true, read: { $0.convAlgorithm = try readEnum($1, "conv_algorithm") },
                  write: { $0.convAlgorithm.rawValue },
                  hashText: { ModelFactory.hasWinogradLayers($0) ? "winograd" : nil }),
        ConfigKey(name: "width_divisor", hashed: true, read: { $0.widthDivisor = try readInt($1, "width_divisor") }, write: { "\($0.widthDivisor)" }),
        ConfigKey(name: "dropout", hashed: true, read: { $0.dropout = try readDouble($1, "dropout") }, write: { number($0.dropout) }),
        // Left out of the hash at kaiming_normal, the only initialisation before the key existed
        // (this text, not the current default: a config without `init` keeps its old hash only
        // while the default is still kaiming_normal).
        ConfigKey(name: "init", hashed: true, read: { $0.initScheme = try readEnum($1, "init") }, write: { $0.initScheme.rawValue },
                  unhashedDefault: "kaiming_normal"),
        ConfigKey(name: "dataset", hashed: true, read: { $0.dataset = try readEnum($1, "dataset") }, write: { $0.dataset.rawValue }),
        ConfigKey(name: "data_path", hashed: false, read: { $0.dataPath = try readString($1, "data_path") }, write: { quoted($0.dataPath) }),
        ConfigKey(name: "augment", hashed: true, read: { $0.augment = try readEnum($1, "augment") }, write: { $0.augment.rawValue }),
        ConfigKey(name: "crop_padding", hashed: true, read: { $0.cropPadding = try readInt($1, "crop_padding") }, write: { "\($0.cropPadding)" }),
        ConfigKey(name: "synthetic_train_samples", hashed: true, read: { $0.syntheticTrainSamples = try readInt($1, "synthetic_train_samples") }, write: { "\($0.syntheticTrainSamples)" }),
        ConfigKey(name: "synthetic_test_samples", hashed: true, read: { $0.syntheticTestSamples = try readInt($1, "synthetic_test_samples") }, write: { "\($0.syntheticTestSamples)" }),
        ConfigKey(name: "synthetic_classes", hashed: true, read: { $0.syntheticClasses = try readInt($1, "synthetic_classes") }, write: { "\($0.syntheticClasses)" }),
        ConfigKey(name: "synthetic_shape", hashed: true, read: { $0.syntheticShape = try readIntList($1, "synthetic_shape") }, write: { list($0.syntheticShape) }),
        ConfigKey(name: "synthetic_noise", hashed: true, read: { $0.syntheticNoise = try readDouble($1, "synthetic_noise") }, write: { number($0.syntheticNoise) }),
        ConfigKey(name: "method", hashed: true, read: { $0.method = try readEnum($1, "method") }, write: { $0.method.rawValue }),
        ConfigKey(name: "lambda", hashed: true, read: { $0.lambda = try readDouble($1, "lambda") }, write: { number($0.effectiveLambda) }),
        ConfigKey(name: "adversarial_alpha", hashed: true, read: { $0.adversarialAlpha = try readDouble($1, "adversarial_alpha") }, write: { number($0.adversarialAlpha) }),
        ConfigKey(name: "adversarial_epsilon", hashed: true, read: { $0.adversarialEpsilon = try readDouble($1, "adversarial_epsilon") }, write: { number($0.adversarialEpsilon) }),
        ConfigKey(name: "batch_size", hashed: true, read: { $0.batchSize = try readInt($1, "batch_size") }, write: { "\($0.batchSize)" }),
        ConfigKey(name: "ghost_batch", hashed: true, read: { $0.ghostBatch = try readInt($1, "ghost_batch") }, write: { "\($0.ghostBatch)" }),
        // Hashed by effect: a run that is not cut into chunks keeps the hash it had before chunks existed.
        ConfigKey(name: "chunk_size", hashed: true, read: { $0.chunkSize = try readInt($1, "chunk_size") }, write: { "\($0.chunkSize)" },
                  hashText: { $0.chunksPerUnit > 1 ? "\($0.effectiveChunkSize)" : $0.linearBlocks > 1 ? "linear-blocks-\($0.linearBlocks)" : nil }),
        ConfigKey(name: "epochs", hashed: true, read: { $0.epochs = try readInt($1, "epochs") }, write: { "\($0.epochs)" }),
        ConfigKey(name: "lr", hashed: true, read: { $0.lr = try readDouble($1, "lr") }, write: { number($0.lr) }),
        ConfigKey(name: "momentum", hashed: true, read: { $0.momentum = try readDouble($1, "momentum") }, write: { number($0.momentum) }),
        ConfigKey(name: "bn_momentum", hashed: true, read: { $0.bnMomentum = try readDouble($1, "bn_momentum") }, write: { number($0.bnMomentum) },
                  unhashedDefault: number(TrainingConfig().bnMomentum)),
        ConfigKey(name: "seed", hashed: true, read: {
            let value = try readInt($1, "seed")
            guard value >= 0 else { throw ConfigError(key: "seed", "must be ≥ 0, got \(value)") }
            $0.seed = UInt64(value)
        }, write: { "\($0.seed)" }),
        ConfigKey(name: "eval_every_epochs", hashed: false, read: { $0.evalEveryEpochs = try readInt($1, "eval_every_epochs") }, write: { "\($0.evalEveryEpochs)" }),
        ConfigKey(name: "train_eval_samples", hashed: false, read: { $0.trainEvalSamples = try readInt($1, "train_eval_samples") }, write: { "\($0.trainEvalSamples)" }),
        ConfigKey(name: "test_eval_samples", hashed: false, read: { $0.testEvalSamples = try readInt($1, "test_eval_samples") }, write: { "\($0.testEvalSamples)" }),
        ConfigKey(name: "checkpoint_every_steps", hashed: false, read: { $0.checkpointEverySteps = try readInt($1, "checkpoint_every_steps") }, write: { "\($0.checkpointEverySteps)" }),
        ConfigKey(name: "keep_checkpoints", hashed: false, read: { $0.keepCheckpoints = try readInt($1, "keep_checkpoints") }, write: { "\($0.keepCheckpoints)" }),
        ConfigKey(name: "threads", hashed: false, read: { $0.threads = try readInt($1, "threads") }, write: { "\($0.threads)" }),
        ConfigKey(name: "max_steps", hashed: false, read: { $0.maxSteps = try readInt($1, "max_steps") }, write: { "\($0.maxSteps)" }),
        ConfigKey(name: "progress_seconds", hashed: false, read: { $0.progressSeconds = try readDouble($1, "progress_seconds") }, write: { number($0.progressSeconds) }),
        ConfigKey(name: "heartbeat_interval", hashed: false, read: { $0.heartbeatInterval = try readSeconds($1, "heartbeat_interval") }, write: { seconds($0.heartbeatInterval) }),
        ConfigKey(name: "worker_timeout", hashed: false, read: { $0.workerTimeout = try readSeconds($1, "worker_timeout") }, write: { seconds($0.workerTimeout) }),
        ConfigKey(name: "coordinator_timeout", hashed: false, read: { $0.coordinatorTimeout = try readSeconds($1, "coordinator_timeout") }, write: { seconds($0.coordinatorTimeout) }),
        ConfigKey(name: "wait_for_workers", hashed: false, read: { $0.waitForWorkers = try readSeconds($1, "wait_for_workers") }, write: { seconds($0.waitForWorkers) }),
        ConfigKey(name: "max_worker_restarts", hashed: false, read: { $0.maxWorkerRestarts = try readInt($1, "max_worker_restarts") }, write: { "\($0.maxWorkerRestarts)" }),
        ConfigKey(name: "step_deadline_factor", hashed: false, read: { $0.stepDeadlineFactor = try readDouble($1, "step_deadline_factor") }, write: { number($0.stepDeadlineFactor) }),
        ConfigKey(name: "step_deadline_floor", hashed: false, read: { $0.stepDeadlineFloor = try readSeconds($1, "step_deadline_floor") }, write: { seconds($0.stepDeadlineFloor) }),
    ]

    public static var keyNames: [String] { keys.map(\.name) }

    /// Parse YAML text: a mapping of known keys; anything else is an error naming the key.
    public static func parse(yaml text: String, base: TrainingConfig = TrainingConfig()) throws -> TrainingConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(key: nil, "not valid YAML: \(error)")
        }
        var config = base
        guard let root else { return config }
        guard let mapping = root.mapping else {
            throw ConfigError(key: nil, "expected a mapping of keys to values at the top level")
        }
        var seen = [String: Int]()
        for (keyNode, valueNode) in mapping {
            let name = keyNode.string ?? "\(keyNode)"
            let line = (keyNode.mark?.line).map { $0 } ?? 0
            if let first = seen[name] {
                throw ConfigError(key: name, "appears twice (lines \(first) and \(line)); keep one")
            }
            seen[name] = line
            try config.set(name, node: valueNode)
        }
        return config
    }

    public static func load(path: String) throws -> TrainingConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: nil, "cannot read config file '\(path)' (does it exist?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(key: nil, "config file '\(path)' is not UTF-8 text")
        }
        var config = try parse(yaml: text)
        if !mappingHasKey(text, "name") {
            config.name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        }
        return config
    }

    private static func mappingHasKey(_ text: String, _ key: String) -> Bool {
        (try? Yams.compose(yaml: text))??.mapping?.keys.contains { $0.string == key } ?? false
    }

    /// Set one key from text, as a `--set key=value` flag does.
    public mutating func set(_ name: String, value: String) throws {
        let node: Node
        do {
            node = try Yams.compose(yaml: value) ?? Node("")
        } catch {
            throw ConfigError(key: name, "value '\(value)' is not valid YAML")
        }
        try set(name, node: node)
    }

    /// Set one key from a YAML node (a plan's axis value, a config file's entry).
    public mutating func set(_ name: String, node: Node) throws {
        guard let key = TrainingConfig.keys.first(where: { $0.name == name }) else {
            let suggestion = TrainingConfig.keyNames.first { $0.hasPrefix(String(name.prefix(3))) }
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            throw ConfigError(key: name, "unknown key\(hint); known keys: \(TrainingConfig.keyNames.joined(separator: ", "))")
        }
        try key.read(&self, node)
    }

    /// Canonical YAML: every key, in table order.
    public func yaml() -> String {
        TrainingConfig.keys.compactMap { key in key.write(self).map { "\(key.name): \($0)" } }
            .joined(separator: "\n") + "\n"
    }

    /// SHA-256 (hex) of the keys that decide the training trajectory. Two runs with the same
    /// hash, data and binary produce the same parameters.
    public var trajectoryHash: String {
        let text = TrainingConfig.keys.filter(\.hashed).compactMap { key in
            (key.hashText.map { $0(self) } ?? key.write(self)).flatMap { $0 == key.unhashedDefault ? nil : "\(key.name): \($0)" }
        }.joined(separator: "\n")
        return SHA256.hex(SHA256.hash(string: text))
    }
}
