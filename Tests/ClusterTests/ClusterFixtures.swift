import Foundation
import TestSupport

// Small configs on synthetic data for the multi-process tests: an MLP and a DenseNet with
// ghost batch norm, 96-sample batches of 6 units (so 4 workers get uneven shards), 5 steps
// per epoch (so 7 steps cross an epoch boundary and an evaluation).

enum ClusterFixtures {
    static func config(model: String, method: String, epochs: Int = 2, evalEveryEpochs: Int = 1, checkpointEverySteps: Int = 4,
                       extra: String = "") -> String {
        let modelKeys = model == "mlp"
            ? "model: mlp\nhidden: [24, 16]\nsynthetic_shape: [1, 6, 6]"
            : model == "densenet-winograd"  // 36 new channels per layer: Winograd on every 3×3 after the stem
            ? "model: densenet\ndepth: 7\ngrowth: 36\nsynthetic_shape: [3, 8, 8]"
            : "model: densenet\ndepth: 7\ngrowth: 4\nsynthetic_shape: [3, 8, 8]"
        return """
            name: cluster-test
            \(modelKeys)
            dataset: synthetic
            synthetic_classes: 4
            synthetic_train_samples: 480
            synthetic_test_samples: 100
            method: \(method)
            batch_size: 96
            ghost_batch: 16
            epochs: \(epochs)
            lr: 0.05
            seed: 3
            eval_every_epochs: \(evalEveryEpochs)
            checkpoint_every_steps: \(checkpointEverySteps)
            progress_seconds: 0.2
            \(extra)
            """
    }

    static func write(_ text: String) -> String {
        let path = Fixtures.temporaryDirectory("ssgd-config") + "/config.yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    static func ipcEndpoint() -> String {
        "ipc://\(NSTemporaryDirectory())ssgd-test-\(UUID().uuidString.prefix(8)).sock"
    }
}
