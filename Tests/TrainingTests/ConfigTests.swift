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
