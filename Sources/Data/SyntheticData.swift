import Engine

// A seeded, learnable synthetic data set for fast tests and smoke runs: each class has a fixed
// random prototype (drawn from (seed, class)); a sample is its class prototype plus Gaussian
// noise of the given scale, drawn from (seed, split, index). Train and test share prototypes.

public enum SyntheticData {
    public static func make(
        shape: Shape, classes: Int, trainSamples: Int, testSamples: Int, noise: Float, seed: UInt64
    ) -> DatasetPair {
        let size = shape.count
        var prototypes = [[Float]]()
        for c in 0..<classes {
            var generator = SplitMix64(keys: seed, 0x5052_4F54, UInt64(c))
            prototypes.append((0..<size).map { _ in generator.nextGaussian() })
        }
        func split(_ name: String, _ count: Int, _ salt: UInt64) -> Dataset {
            let images = FloatBuffer(count: count * size)
            var labels = [Int32](repeating: 0, count: count)
            for n in 0..<count {
                var generator = SplitMix64(keys: seed, salt, UInt64(n))
                let label = n % classes
                labels[n] = Int32(label)
                let x = images.pointer + n * size
                for i in 0..<size { x[i] = prototypes[label][i] + noise * generator.nextGaussian() }
            }
            return Dataset(name: name, shape: shape, classes: classes, images: images, labels: labels)
        }
        return DatasetPair(checked: split("synthetic-train", trainSamples, 1), test: split("synthetic-test", testSamples, 2))
    }
}
