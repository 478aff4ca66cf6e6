import Foundation
@testable import Study
import TestSupport
import Testing
import Training

// `ssgd experiment`: a plan's expansion into cells (names, values, order, count) and its
// validation up front, the log parsing behind the progress view, and the ETA.

@Suite struct ExperimentPlanTests {
    static let base = """
        model: mlp
        hidden: [16]
        dataset: synthetic
        synthetic_shape: [1, 4, 4]
        synthetic_classes: 3
        synthetic_train_samples: 256
        synthetic_test_samples: 64
        batch_size: 64
        ghost_batch: 32
        epochs: 2
        """

    static let wide = base.replacingOccurrences(of: "hidden: [16]", with: "hidden: [32, 8]")

    /// A folder holding base.yaml (and `others`), and the plan text parsed from plan.yaml there.
    static func plan(_ text: String, others: [String: String] = [:]) throws -> ExperimentPlan {
        let folder = Fixtures.temporaryDirectory("ssgd-plan")
        try base.write(toFile: folder + "/base.yaml", atomically: true, encoding: .utf8)
        for (name, content) in others { try content.write(toFile: "\(folder)/\(name)", atomically: true, encoding: .utf8) }
        try text.write(toFile: folder + "/plan.yaml", atomically: true, encoding: .utf8)
        return try ExperimentPlan.load(path: folder + "/plan.yaml")
    }

    static func error(_ text: String, others: [String: String] = [:]) -> String {
        do {
            _ = try plan(text, others: others)
            return "accepted"
        } catch { return "\(error)" }
    }

    @Test func aPlanExpandsToTheCartesianProductFirstAxisOutermost() throws {
        let plan = try Self.plan("""
            name: sweep
            config: base.yaml
            set: {epochs: 3, lr: 0.2}
            axes:
              method: [vanilla, spectral]
              batch:
                - {batch_size: 32, ghost_batch: 16}
                - {batch_size: 64, ghost_batch: 32}
              seed: [1, 2, 3]
            """)
        #expect(plan.cells.count == 12)
        #expect(plan.output == "experiments/sweep")
        #expect(plan.cells.map(\.name) == [
            "vanilla-b32-s1", "vanilla-b32-s2", "vanilla-b32-s3",
            "vanilla-b64-s1", "vanilla-b64-s2", "vanilla-b64-s3",
            "spectral-b32-s1", "spectral-b32-s2", "spectral-b32-s3",
            "spectral-b64-s1", "spectral-b64-s2", "spectral-b64-s3",
        ])
        let cell = plan.cells[10]
        #expect(cell.values == [
            CellValue(key: "method", value: "spectral"), CellValue(key: "batch_size", value: "64"),
            CellValue(key: "ghost_batch", value: "32"), CellValue(key: "seed", value: "2"),
        ])
        #expect(cell.config.name == cell.name)
        #expect(cell.config.method == .spectral && cell.config.batchSize == 64 && cell.config.ghostBatch == 32 && cell.config.seed == 2)
        #expect(cell.config.epochs == 3 && cell.config.lr == 0.2 && cell.config.hidden == [16])
        #expect(plan.alpha == nil)
        #expect(try Self.plan("config: base.yaml\nalpha: 0.8").alpha == 0.8)
        #expect(Set(plan.cells.map(\.config.trajectoryHash)).count == 12)
    }

    @Test func severalConfigsNameTheirCellsAndAFolderOfConfigsIsEveryYAMLButThePlan() throws {
        let listed = try Self.plan("configs: [base.yaml, wide.yaml]\naxes: {seed: [1, 2]}", others: ["wide.yaml": Self.wide])
        #expect(listed.cells.map(\.name) == ["base-s1", "base-s2", "wide-s1", "wide-s2"])
        #expect(listed.cells[3].config.hidden == [32, 8])
        let folder = try Self.plan("configs: .\noutput: /tmp/x", others: ["wide.yaml": Self.wide])
        #expect(folder.cells.map(\.name) == ["base", "wide"])
        #expect(folder.output == "/tmp/x")
        let single = try Self.plan("config: base.yaml")
        #expect(single.cells.map(\.name) == ["base"])
        #expect(single.output.hasSuffix("experiments/plan"))
    }

    @Test func valuesThatAreNotNameSafeGetAHashSoCellsStayApart() throws {
        let plan = try Self.plan("""
            config: base.yaml
            axes:
              data_path: [/data/a b, /data/a_b]
              hidden: [[8, 4], [16]]
            """)
        let names = plan.cells.map(\.name)
        #expect(Set(names).count == 4)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || "._+-".contains($0) } })
        #expect(names[0].hasPrefix("data_path_data_a_b-") && names[0].hasSuffix("-hidden8x4"))
        #expect(plan.cells[1].values.last == CellValue(key: "hidden", value: "[16]"))
    }

    @Test func aBadPlanIsRefusedUpFrontNamingTheKey() {
        #expect(Self.error("config: base.yaml\naxis: {seed: [1]}").contains("unknown key 'axis'"))
        #expect(Self.error("config: base.yaml\nalpha: 85").contains("alpha is the report's test-accuracy threshold"))
        #expect(Self.error("config: base.yaml\naxes: {seed: []}").contains("axis 'seed' has no values"))
        #expect(Self.error("config: base.yaml\naxes: {seed: 3}").contains("axis 'seed' takes a list"))
        #expect(Self.error("config: base.yaml\naxes: {methd: [spectral]}").contains("did you mean the key 'method'"))
        #expect(Self.error("config: base.yaml\nset: {learning_rate: 0.1}").contains("'learning_rate' is unknown"))
        #expect(Self.error("config: base.yaml\naxes: {b: [{batch_sise: 4}]}").contains("'batch_sise' is unknown"))
        #expect(Self.error("config: base.yaml\naxes: {method: [vanilla, spectrl]}").contains("config key 'method': unknown value 'spectrl'"))
        #expect(Self.error("config: base.yaml\naxes: {batch_size: [64, 100]}").contains("config key 'batch_size': must be a multiple of ghost_batch"))
        #expect(Self.error("config: base.yaml\naxes: {lr: [0.1, abc]}").contains("config key 'lr': expected a number, got 'abc'"))
        #expect(Self.error("config: base.yaml\nset: {seed: 1}\naxes: {seed: [1, 2]}").contains("'seed' is set by both set: and axis 'seed'"))
        #expect(Self.error("config: base.yaml\naxes: {name: [a, b]}").contains("the plan names its cells"))
        #expect(Self.error("config: missing.yaml").contains("cannot read config file"))
        #expect(Self.error("axes: {seed: [1]}").contains("config: FILE"))
        #expect(Self.error("config: base.yaml\naxes: {seed: [1, 1]}").contains("would share the run directory s1"))
        #expect(Self.error("config: base.yaml\naxes: {b: [{batch_size: 64, lr: 0.1}, {batch_size: 64, lr: 0.2}]}").contains("would share the run directory b64"))
    }

    @Test func theMiniPlanIsTheFortyEightCellsOfThePapersStudy() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/mini/plan.yaml").path
        let plan = try ExperimentPlan.load(path: path)
        #expect(plan.cells.count == 48)
        #expect(plan.output == "experiments/mini")
        #expect(plan.alpha == 0.8)
        var expected: [String] = []
        for model in ["mlp", "cnn"] {
            for method in ["vanilla", "decay", "adversarial", "spectral"] {
                for batch in ["b64", "b4096"] { for seed in 1...3 { expected.append("\(model)-\(method)-\(batch)-s\(seed)") } }
            }
        }
        #expect(plan.cells.map(\.name) == expected)
        for cell in plan.cells {
            #expect(cell.config.dataset == .fashionMNIST && cell.config.epochs == 4)
            #expect(cell.config.model == (cell.name.hasPrefix("mlp") ? .mlp : .densenet))
            #expect(cell.config.ghostBatch == (cell.config.batchSize == 64 ? 64 : 128))
            #expect(cell.config.lr == (cell.config.batchSize == 64 ? 0.01 : 0.1))
        }
    }

    @Test func theLogParserFollowsTheTrainersLines() {
        var progress = CellProgress(started: 100)
        for (time, line) in [
            (101.0, "training mlp (300 parameters) on synthetic with vanilla: 40 steps of 64 (4 per epoch, 10 epochs), 1 worker(s), run directory d"),
            (102.0, "resumed from d/checkpoints/step-000000008.ckpt at step 8"),
            (104.0, "step 12/40 epoch 3.00 loss 0.5 acc 80.00% lr 0.1 100 img/s workers 1 | step 0.5s"),
            (108.0, "evaluating at step 20: 64 test and 256 train samples"),
        ] { progress.read(line, at: time) }
        #expect(progress.totalSteps == 40)
        #expect(progress.startStep == 8)
        #expect(progress.step == 20)
        #expect(progress.secondsPerStep(now: 108) == 0.5)
        progress.read("ssgd: error: cannot read /nope", at: 109)
        progress.read("", at: 109)
        #expect(progress.failureText == "cannot read /nope")
    }

    @Test func theETAUsesMeasuredStepTimesOverTheSlots() throws {
        var small = TrainingConfig()
        small.batchSize = 64
        small.ghostBatch = 64
        var large = small
        large.batchSize = 4096
        var estimator = ETAEstimator()
        #expect(estimator.remaining([(small, 10, 0)], slots: 1) == nil)
        estimator.record(small, secondsPerStep: 0.5)
        var otherSeed = small
        otherSeed.seed = 7
        #expect(estimator.secondsPerStep(otherSeed) == 0.5)
        #expect(estimator.remaining([(small, 10, 0), (otherSeed, 30, 0)], slots: 2) == 10)
        // Not measured: the measured class's seconds per unit of work (batch × MACs, × 2 when
        // adversarial) × its work.
        func close(_ value: Double?, _ expected: Double) -> Bool { abs((value ?? 0) - expected) <= 1e-9 * expected }
        let perStep: Double = 0.5 * 4096 / 64
        #expect(close(estimator.secondsPerStep(large), perStep))
        var adversarial = large
        adversarial.method = .adversarial
        #expect(close(estimator.secondsPerStep(adversarial), 2 * perStep))
        var wider = small
        wider.hidden = [2048, 1024]
        let reference: Double = 784 * 1024 + 1024 * 1024 + 1024 * 10
        let widened: Double = 784 * 2048 + 2048 * 1024 + 1024 * 10
        #expect(close(estimator.secondsPerStep(wider), 0.5 * widened / reference))
        #expect(ETAEstimator.text(seconds: 3725) == "1h 02m")
        #expect(ETAEstimator.text(seconds: 95) == "1m 35s")
    }
}
