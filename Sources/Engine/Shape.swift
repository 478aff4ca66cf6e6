/// A per-sample tensor shape (the batch dimension is never part of it): [features] for
/// dense data, [C, H, W] for images (NCHW in memory, batch first).
public struct Shape: Equatable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var dimensions: [Int]

    public init(_ dimensions: [Int]) { self.dimensions = dimensions }
    public init(_ dimensions: Int...) { self.dimensions = dimensions }

    public var count: Int { dimensions.reduce(1, *) }
    public var rank: Int { dimensions.count }
    public subscript(index: Int) -> Int { dimensions[index] }

    /// Channels, height, width of an image shape; a flat shape is C=count, H=W=1.
    public var chw: (c: Int, h: Int, w: Int) {
        dimensions.count == 3 ? (dimensions[0], dimensions[1], dimensions[2]) : (count, 1, 1)
    }

    public var description: String { dimensions.map(String.init).joined(separator: "×") }
}
