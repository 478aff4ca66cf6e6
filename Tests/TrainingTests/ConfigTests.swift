import Foundation
import Testing
import Training

@Suite struct ConfigTests {
    @Test func parsesKeysAndAppliesMethodDefaults() throws {
        let config = try TrainingConfig.parse(yaml: """
            model: mlp
            hidden: [64, 32]
            method: spectral
            batch_size: 256
            ghost_batch: 64
            lr: 0.2
            """)
        #expect(config.hidden == [64, 32])
        #expect(config.method == .spectral)
        #expect(config.effectiveLambda == 0.01)
        #expect(config.unitsPerStep == 4)
        #expect(try TrainingConfig.parse(yaml: "method: decay").effectiveLambda == 1e-4)
    }

    @Test func unknownKeyIsRejectedNamingTheKey() {
        #expect(throws: ConfigError.self) { try TrainingConfig.parse(yaml: "learning_rate: 0.1") }
        do {
            _ = try TrainingConfig.parse(yaml: "batchsize: 12")
            Issue.record("an unknown key was accepted")
        } catch let error as ConfigError {
            #expect(error.key == "batchsize")
            #expect(error.description.contains("batch_size"))
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test func unknownMethodAndModelAreRejectedWithTheChoices() {
        do {
            _ = try TrainingConfig.parse(yaml: "method: dropout")
            Issue.record("accepted")
        } catch let error as ConfigError {
            #expect(error.key == "method")
            #expect(error.description.contains("spectral"))
        } catch { Issue.record("unexpected \(error)") }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse(yaml: "model: resnet") }
    }

    @Test func invalidValuesAreRejectedBeforeAnyWork() throws {
        func key(_ yaml: String) -> String? {
            do {
                try TrainingConfig.parse(yaml: yaml).validate()
                return nil
            } catch let error as ConfigError { return error.key } catch { return "other" }
        }
        #expect(key("batch_size: 0") == "batch_size")
        #expect(key("batch_size: -4") == "batch_size")
        #expect(key("batch_size: 100\nghost_batch: 64") == "batch_size")
        #expect(key("lambda: -0.1") == "lambda")
        #expect(key("lr: abc") == "lr")
        #expect(key("momentum: 1.5") == "momentum")
        #expect(key("epochs: 0") == "epochs")
        #expect(key("lr: 0.3") == nil)
    }

    @Test func canonicalYAMLRoundTripsAndHashIgnoresRunControl() throws {
        var config = TrainingConfig()
        config.method = .adversarial
        config.hidden = [10, 20]
        config.name = "a \"quoted\" name"
        let again = try TrainingConfig.parse(yaml: config.yaml())
        #expect(again.yaml() == config.yaml())
        var other = again
        other.maxSteps = 7
        other.threads = 1
        other.checkpointEverySteps = 3
        #expect(other.trajectoryHash == config.trajectoryHash)
        other.lr = 0.3
        #expect(other.trajectoryHash != config.trajectoryHash)
    }

    @Test func flagOverridesSetKeys() throws {
        var config = TrainingConfig()
        try config.set("lr", value: "0.25")
        try config.set("hidden", value: "128,64")
        try config.set("method", value: "decay")
        #expect(config.lr == 0.25)
        #expect(config.hidden == [128, 64])
        #expect(config.method == .decay)
        #expect(throws: ConfigError.self) { try config.set("nope", value: "1") }
    }

    @Test func convAlgorithmIsHashedOnlyWhereWinogradChangesTheArithmetic() throws {
        func config(_ model: String, _ algorithm: String? = nil) throws -> TrainingConfig {
            try TrainingConfig.parse(yaml: "dataset: synthetic\nsynthetic_shape: [3, 32, 32]\n" + model
                + (algorithm.map { "\nconv_algorithm: \($0)" } ?? ""))
        }
        // VGG-16 and a DenseNet with 36 new channels per layer have Winograd layers: the two
        // algorithms are two trajectories.
        for model in ["model: vgg16", "model: nin", "model: densenet\ndepth: 7\ngrowth: 36"] {
            let winograd = try config(model), im2col = try config(model, "im2col")
            #expect(winograd.convAlgorithm == .winograd && ModelFactory.hasWinogradLayers(winograd), "\(model)")
            #expect(im2col.convAlgorithm == .im2col && !ModelFactory.hasWinogradLayers(im2col), "\(model)")
            #expect(winograd.trajectoryHash != im2col.trajectoryHash, "\(model)")
            #expect(try config(model, "winograd").trajectoryHash == winograd.trajectoryHash, "\(model)")
        }
        // The MLP and a thin DenseNet (12 new channels: row shifts) compute the same either way,
        // and keep the hash they had before the key existed.
        for model in ["model: mlp", "model: densenet\ndepth: 7\ngrowth: 12"] {
            let winograd = try config(model)
            #expect(!ModelFactory.hasWinogradLayers(winograd), "\(model)")
            #expect(winograd.trajectoryHash == (try config(model, "im2col")).trajectoryHash, "\(model)")
        }
        #expect(try TrainingConfig.parse(yaml: (try config("model: vgg16", "im2col")).yaml()).convAlgorithm == .im2col)
        do {
            _ = try config("model: vgg16", "fft")
            Issue.record("accepted conv_algorithm: fft")
        } catch let error as ConfigError {
            #expect(error.key == "conv_algorithm")
            #expect(error.description.contains("winograd, im2col"))
        }
    }

    @Test func initIsParsedNamedInErrorsAndLeavesOldHashesAloneAtKaimingNormal() throws {
        let smoke = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/smoke.yaml").path
        var config = try TrainingConfig.load(path: smoke)
        #expect(config.initScheme == .kaimingNormal)
        // configs/smoke.yaml's hash as written by ssgd before `init` existed (commit dfd8097).
        let before = "6699692bcc797b767122b6e3b1139c540315a8fe7b536fd0edcdd0228c54410e"
        #expect(config.trajectoryHash == before)
        #expect(config.yaml().contains("init: kaiming_normal"))
        try config.set("init", value: "kaiming_normal")
        #expect(config.trajectoryHash == before)
        try config.set("init", value: "pytorch")
        #expect(config.initScheme == .pytorch)
        #expect(config.trajectoryHash != before)
        try config.set("init", value: "lecun_normal")
        #expect(config.initScheme == .lecunNormal)
        #expect(try TrainingConfig.parse(yaml: config.yaml()).initScheme == .lecunNormal)
        do {
            try config.set("init", value: "xavier")
            Issue.record("accepted init: xavier")
        } catch let error as ConfigError {
            #expect(error.key == "init")
            #expect(error.description.contains("kaiming_normal, pytorch, lecun_normal"))
        }
    }
}
