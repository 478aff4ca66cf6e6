import Engine

// Random crop (after zero padding) and horizontal flip, drawn from (seed, epoch, sample
// index), so every process that trains a sample in an epoch augments it the same way.

public struct Augmenter: Sendable {
    public let kind: Augmentation
    public let padding: Int
    public let seed: UInt64

    public init(kind: Augmentation, padding: Int, seed: UInt64) {
        self.kind = kind
        self.padding = padding
        self.seed = seed
    }

    /// Copy sample `source` (shape C×H×W) to `destination`, augmented for (epoch, index).
    public func copy(
        _ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, shape: Shape,
        epoch: Int, index: Int32
    ) {
        guard kind == .cropFlip, shape.rank == 3 else {
            destination.update(from: source, count: shape.count)
            return
        }
        let (channels, height, width) = shape.chw
        var generator = SplitMix64(keys: seed, 0x4155_474D, UInt64(epoch), UInt64(index))
        let dy = generator.nextIndex(below: 2 * padding + 1) - padding
        let dx = generator.nextIndex(below: 2 * padding + 1) - padding
        let flip = generator.next() & 1 == 1
        for c in 0..<channels {
            let plane = source + c * height * width
            let out = destination + c * height * width
            for y in 0..<height {
                let sy = y + dy
                for x in 0..<width {
                    let sx = (flip ? width - 1 - x : x) + dx
                    out[y * width + x] = (sy >= 0 && sy < height && sx >= 0 && sx < width) ? plane[sy * width + sx] : 0
                }
            }
        }
    }
}
