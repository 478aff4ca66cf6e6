import Engine

// Global contrast normalisation (the paper's preprocessing): each image independently has its
// mean subtracted and is divided by its standard deviation (a floor of 1e-8 keeps a constant
// image at zero instead of dividing by zero). Accumulated in double.

public enum GlobalContrastNormalization {
    public static func apply(to dataset: Dataset) {
        let size = dataset.sampleSize
        for n in 0..<dataset.count {
            let x = dataset.sample(n)
            var sum = 0.0
            for i in 0..<size { sum += Double(x[i]) }
            let mean = sum / Double(size)
            var squares = 0.0
            for i in 0..<size {
                let d = Double(x[i]) - mean
                squares += d * d
            }
            let std = max((squares / Double(size)).squareRoot(), 1e-8)
            for i in 0..<size { x[i] = Float((Double(x[i]) - mean) / std) }
        }
    }
}
