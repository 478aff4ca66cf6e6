import Data
import Foundation
import Training
import Yams

// An experiment plan (docs/experiment.md): base config(s) and the axes to sweep; its cells are
// every config × the cartesian product of the axes' values (first axis outermost). Parsing
// checks everything a cell needs before anything runs — unknown plan keys, empty axes, and every
// cell's config through TrainingConfig's own parser and validation — so a typo fails in
// milliseconds, naming the key.
//
//   name: mini                        # output folder experiments/mini (unless output: or --output)
//   configs: [mlp.yaml, cnn.yaml]     # or config: FILE, or configs: FOLDER (its *.yaml)
//   set: {epochs: 3}                  # applied to every cell
//   alpha: 0.8                        # the report's gap threshold (default: per data set)
//   axes:
//     method: [vanilla, spectral]     # a config key: one value per cell
//     batch:                          # any other name: a linked axis, each value sets several keys
//       - {batch_size: 64, lr: 0.01}  #   (and is named by the first: b64)
//       - {batch_size: 4096, lr: 0.1}
//     seed: [1, 2, 3]

/// One key = value a plan sets for a cell, as text.
public struct CellValue: Sendable, Equatable, Codable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

public struct ExperimentCell: Sendable {
    /// The run directory's name: the source config's (when the plan has several) and one token
    /// per axis (from the first key of a linked axis's value), e.g. `mlp-spectral-b64-s2`.
    public var name: String
    /// The config file the cell starts from.
    public var source: String
    /// The axes' values for this cell, in plan order (a linked axis gives several).
    public var values: [CellValue]
    /// Resolved and validated; `name` is the cell's name.
    public var config: TrainingConfig
}

public struct PlanError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct ExperimentPlan: Sendable {
    public var path: String
    public var name: String
    /// The output folder: runs/, logs/, configs/, report/ and experiment.json go here.
    public var output: String
    public var cells: [ExperimentCell]
    /// The report's generalization-gap threshold (nil: per data set; --alpha overrides).
    public var alpha: Double?

    static let planKeys = ["name", "output", "config", "configs", "set", "axes", "alpha"]

    /// Read and expand a plan file; `output` (the --output flag) overrides the plan's.
    public static func load(path: String, output: String? = nil) throws -> ExperimentPlan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlanError("cannot read plan '\(path)' (does it exist?)")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), path: path, output: output)
    }

    public static func parse(yaml text: String, path: String, output: String? = nil) throws -> ExperimentPlan {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw PlanError("plan \(path) is not valid YAML: \(error)")
        }
        guard let mapping = root?.mapping else {
            throw PlanError("plan \(path): expected a mapping with \(planKeys.joined(separator: ", ")) at the top level")
        }
        var entries: [String: Node] = [:]
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? "\(keyNode)"
            guard planKeys.contains(key) else {
                throw PlanError("plan \(path): unknown key '\(key)'; a plan has \(planKeys.joined(separator: ", ")) (config keys go under set: or axes:)")
            }
            guard entries[key] == nil else { throw PlanError("plan \(path): key '\(key)' appears twice") }
            entries[key] = value
        }
        let folder = (path as NSString).deletingLastPathComponent
        let name = try entries["name"].map { try scalar($0, "name", path) }
            ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        guard !name.isEmpty, !name.contains("/") else { throw PlanError("plan \(path): name must be a plain folder name, got '\(name)'") }
        let sources = try configFiles(entries, folder: folder, planPath: path)
        let fixed = try setEntries(entries["set"], planPath: path)
        let axes = try parseAxes(entries["axes"], planPath: path, fixedKeys: fixed.map(\.key))
        let cells = try expand(sources: sources, fixed: fixed, axes: axes, severalSources: entries["configs"] != nil || axes.isEmpty)
        let destination = try output ?? entries["output"].map { try scalar($0, "output", path) } ?? "experiments/\(name)"
        var alpha: Double?
        if let node = entries["alpha"] {
            let text = try scalar(node, "alpha", path)
            guard let value = Double(text), value >= 0 && value < 1 else {
                throw PlanError("plan \(path): alpha is the report's test-accuracy threshold in [0, 1), got '\(text)'")
            }
            alpha = value
        }
        return ExperimentPlan(path: path, name: name, output: destination, cells: cells, alpha: alpha)
    }

    // MARK: - Parts of a plan

    /// An axis: a config key with one value per cell, or a linked axis (any other name) whose
    /// values are mappings of config keys set together.
    struct Axis {
        var name: String
        /// Per value: the keys it sets, in order.
        var values: [[(key: String, node: Node)]]
    }

    private static func scalar(_ node: Node, _ key: String, _ planPath: String) throws -> String {
        guard let text = node.scalar?.string else { throw PlanError("plan \(planPath): '\(key)' takes a single value, got \(node)") }
        return text
    }

    private static func resolve(_ file: String, folder: String) -> String {
        file.hasPrefix("/") || folder.isEmpty ? file : (folder as NSString).appendingPathComponent(file)
    }

    /// `config: FILE`, `configs: [FILE…]` or `configs: FOLDER` (its .yaml/.yml files in name
    /// order, the plan itself left out), relative to the plan's folder.
    private static func configFiles(_ entries: [String: Node], folder: String, planPath: String) throws -> [String] {
        switch (entries["config"], entries["configs"]) {
        case (nil, nil):
            throw PlanError("plan \(planPath): name the base config with config: FILE, or several with configs: [FILE, …] or configs: FOLDER")
        case (.some, .some):
            throw PlanError("plan \(planPath): give config: or configs:, not both")
        case (let single?, nil):
            return [resolve(try scalar(single, "config", planPath), folder: folder)]
        case (nil, let several?):
            if let list = several.sequence {
                guard !list.isEmpty else { throw PlanError("plan \(planPath): configs: is an empty list") }
                return try list.map { resolve(try scalar($0, "configs", planPath), folder: folder) }
            }
            let directory = resolve(try scalar(several, "configs", planPath), folder: folder)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw PlanError("plan \(planPath): configs: '\(directory)' is not a folder (give a list of files, or a folder of configs)")
            }
            let plan = URL(fileURLWithPath: planPath).standardizedFileURL.path
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                .map { (directory as NSString).appendingPathComponent($0) }
                .filter { URL(fileURLWithPath: $0).standardizedFileURL.path != plan }
            guard !files.isEmpty else { throw PlanError("plan \(planPath): configs: folder '\(directory)' holds no .yaml files") }
            return files
        }
    }

    private static func setEntries(_ node: Node?, planPath: String) throws -> [(key: String, node: Node)] {
        guard let node else { return [] }
        guard let mapping = node.mapping else { throw PlanError("plan \(planPath): set: takes a mapping of config keys to values") }
        return try mapping.map { keyNode, value in
            let key = keyNode.string ?? "\(keyNode)"
            try checkKey(key, where: "set:", planPath)
            return (key, value)
        }
    }

    private static func checkKey(_ key: String, where place: String, _ planPath: String) throws {
        if key == "name" { throw PlanError("plan \(planPath): \(place) sets 'name', but the plan names its cells (docs/experiment.md)") }
        guard TrainingConfig.keyNames.contains(key) else {
            let hint = TrainingConfig.keyNames.first { $0.hasPrefix(String(key.prefix(3))) }.map { " (did you mean '\($0)'?)" } ?? ""
            throw PlanError("plan \(planPath): \(place) config key '\(key)' is unknown\(hint); docs/configuration.md lists every key")
        }
    }

    private static func parseAxes(_ node: Node?, planPath: String, fixedKeys: [String]) throws -> [Axis] {
        guard let node else { return [] }
        guard let mapping = node.mapping else {
            throw PlanError("plan \(planPath): axes: takes a mapping, e.g. axes: {method: [vanilla, spectral], seed: [1, 2]}")
        }
        var axes: [Axis] = []
        var setBy: [String: String] = Dictionary(uniqueKeysWithValues: fixedKeys.map { ($0, "set:") })
        for (nameNode, valuesNode) in mapping {
            let name = nameNode.string ?? "\(nameNode)"
            guard let list = valuesNode.sequence else {
                throw PlanError("plan \(planPath): axis '\(name)' takes a list of values, e.g. \(name): [a, b]")
            }
            guard !list.isEmpty else { throw PlanError("plan \(planPath): axis '\(name)' has no values") }
            var values: [[(key: String, node: Node)]] = []
            if TrainingConfig.keyNames.contains(name) || name == "name" {
                try checkKey(name, where: "axis '\(name)':", planPath)
                for value in list {
                    if value.mapping != nil {
                        throw PlanError("plan \(planPath): axis '\(name)' is the config key \(name); its values are \(name) values, got the mapping \(value)")
                    }
                    values.append([(name, value)])
                }
            } else {
                for value in list {
                    guard let pairs = value.mapping, !pairs.isEmpty else {
                        let hint = TrainingConfig.keyNames.first { $0.hasPrefix(String(name.prefix(3))) }.map { " (did you mean the key '\($0)'?)" } ?? ""
                        throw PlanError("plan \(planPath): axis '\(name)' is not a config key\(hint); an axis with another name is a linked axis whose values are mappings of config keys, e.g. - {batch_size: 64, lr: 0.01}; got \(value)")
                    }
                    values.append(try pairs.map { keyNode, node in
                        let key = keyNode.string ?? "\(keyNode)"
                        try checkKey(key, where: "axis '\(name)':", planPath)
                        return (key, node)
                    })
                }
            }
            for key in Set(values.flatMap { $0.map(\.key) }) {
                if let other = setBy[key] {
                    throw PlanError("plan \(planPath): config key '\(key)' is set by both \(other) and axis '\(name)'; keep one")
                }
                setBy[key] = "axis '\(name)'"
            }
            axes.append(Axis(name: name, values: values))
        }
        return axes
    }

    // MARK: - Cells

    private static func expand(
        sources: [String], fixed: [(key: String, node: Node)], axes: [Axis], severalSources: Bool
    ) throws -> [ExperimentCell] {
        var cells: [ExperimentCell] = []
        var owners: [String: String] = [:]
        for source in sources {
            var base: TrainingConfig
            do {
                base = try TrainingConfig.load(path: source)
                for (key, node) in fixed { try base.set(key, node: node) }
            } catch {
                throw PlanError("config \(source): \(error)")
            }
            let sourceName = ((source as NSString).lastPathComponent as NSString).deletingPathExtension
            var choice = [Int](repeating: 0, count: axes.count)
            repeat {
                var config = base
                var values: [CellValue] = []
                var tokens = severalSources ? [sourceName] : []
                for (axis, index) in zip(axes, choice) {
                    for (key, node) in axis.values[index] {
                        do {
                            try config.set(key, node: node)
                        } catch {
                            throw PlanError("config \(source), axis '\(axis.name)' value \(index + 1): \(error)")
                        }
                        values.append(CellValue(key: key, value: valueText(node)))
                    }
                    // A value is named by its first key (a linked axis's other keys come along).
                    if let (key, node) = axis.values[index].first { tokens.append(token(key: key, node: node)) }
                }
                let name = tokens.joined(separator: "-")
                config.name = name
                let described = values.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                do {
                    try config.validate()
                    try MemoryBudget.check(config)
                } catch {
                    throw PlanError("cell \(name) (\(sourceName)\(described.isEmpty ? "" : ": " + described)): \(error)")
                }
                if let other = owners[name] {
                    throw PlanError("cells '\(other)' and '\(sourceName): \(described)' would share the run directory \(name); make the axes' values (a linked axis's first key) differ")
                }
                owners[name] = "\(sourceName): \(described)"
                cells.append(ExperimentCell(name: name, source: source, values: values, config: config))
            } while advance(&choice, limits: axes.map(\.values.count))
        }
        return cells
    }

    /// The next combination, last axis fastest; false after the last.
    private static func advance(_ choice: inout [Int], limits: [Int]) -> Bool {
        for axis in stride(from: choice.count - 1, through: 0, by: -1) {
            choice[axis] += 1
            if choice[axis] < limits[axis] { return true }
            choice[axis] = 0
        }
        return false
    }

    static func valueText(_ node: Node) -> String {
        if let list = node.sequence { return "[" + list.map(valueText).joined(separator: ", ") + "]" }
        return node.scalar?.string ?? "\(node)"
    }

    /// Keys whose values name themselves (`spectral`, `densenet`) and short prefixes for the
    /// common numbers (`b64`, `s2`); any other key is written before its value (`lr0.01`).
    static let selfNamingKeys: Set<String> = ["method", "model", "dataset", "init", "augment"]
    static let prefixes = ["batch_size": "b", "seed": "s"]

    /// A name token for one value: letters, digits, `.`, `_`, `+` and `-` only; a value that
    /// needed changing (a path, say) gets 8 hex digits of its SHA-256 so two stay apart.
    static func token(key: String, node: Node) -> String {
        let text = node.sequence.map { $0.map(valueText).joined(separator: "x") } ?? valueText(node)
        let raw = selfNamingKeys.contains(key) ? text : (prefixes[key] ?? key) + text
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")
        var clean = String(raw.map { allowed.contains($0) ? $0 : "_" })
        while clean.hasPrefix(".") { clean = "_" + clean.dropFirst() }
        if clean != raw { clean += "-" + String(SHA256.hex(SHA256.hash(string: text)).prefix(8)) }
        return clean
    }
}
