// Sample messages and byte-level helpers shared by the wire protocol tests.

import Engine
import Wire

enum WireSamples {
    static let jobID = Digest32(bytes: (0..<32).map { UInt8($0 &* 7 &+ 1) }) ?? .zero
    static let fingerprint = Digest32(bytes: (0..<32).map { UInt8(255 - $0) }) ?? .zero

    static func floats(_ count: Int, scale: Float = 0.25) -> WireFloats {
        WireFloats((0..<count).map { Float($0) * scale - 3 })
    }

    /// One envelope of every kind (and the task/result variants), with `parameterCount` floats.
    static func all(parameterCount: Int = 12) -> [WireEnvelope] {
        let hello = HelloMessage(
            jobID: jobID, dataFingerprint: fingerprint, capabilities: [.train, .evaluate],
            lanes: 2, blasCore: "SkylakeX", workerName: "node-3/worker-1 ✓", processID: 4242)
        let welcome = WelcomeMessage(
            workerIndex: 2, heartbeatIntervalMilliseconds: 500,
            config: "model: mlp\nbatch: 64\nghost_batch: 16\n")
        let train = TaskMessage(
            kind: .train, epoch: 3, firstUnit: 4, unitCount: 2, unitSize: 3, split: .train,
            sampleIndices: [9, 1, 7, 0, 5, 2], parameters: floats(parameterCount))
        let evaluate = TaskMessage(
            kind: .evaluate, epoch: 0, firstUnit: 0, unitCount: 2, unitSize: 4, split: .test,
            sampleIndices: [0, 1, 2, 3, 4], parameters: floats(parameterCount))
        let trainResult = ResultMessage(
            taskKind: .train, firstUnit: 4, unitCount: 3, lossSums: [1.5, 2.25, 0.125],
            correctCounts: [2, 3, 0], sampleCounts: [3, 3, 3],
            gradientBlocks: [
                GradientBlock(firstUnit: 4, unitCount: 2, gradient: floats(parameterCount, scale: 0.5)),
                GradientBlock(firstUnit: 6, unitCount: 1, gradient: floats(parameterCount, scale: 1.5)),
            ],
            statisticsPerUnit: 2, batchStatistics: floats(6), computeSeconds: 0.75)
        let evaluateResult = ResultMessage(
            taskKind: .evaluate, firstUnit: 0, unitCount: 2, lossSums: [4, 1], correctCounts: [3, 1],
            sampleCounts: [4, 1], gradientBlocks: [], statisticsPerUnit: 0,
            batchStatistics: .empty, computeSeconds: 0)
        let messages: [WireMessage] = [
            .hello(hello), .welcome(welcome), .task(train), .task(evaluate),
            .result(trainResult), .result(evaluateResult),
            .heartbeat(HeartbeatMessage(sequence: 1 << 40, busy: true)),
            .shutdown(ShutdownMessage(reason: "training finished")),
            .error(ErrorMessage(code: .dataMismatch, message: "dataset fingerprint differs")),
            // Version 3: a task that meets another from the right, a result of no units, and the claims.
            .task(TaskMessage(
                kind: .train, epoch: 1, firstUnit: 2, unitCount: 2, unitSize: 2, split: .train,
                sampleIndices: [3, 8, 6, 1], parameters: floats(parameterCount), end: .right)),
            .result(ResultMessage(
                taskKind: .train, firstUnit: 4, unitCount: 0, lossSums: [], correctCounts: [], sampleCounts: [],
                gradientBlocks: [], statisticsPerUnit: 2, batchStatistics: .empty, computeSeconds: 0.5)),
            .claim(ClaimMessage(count: 1)),
            .grant(GrantMessage(firstUnit: 7, unitCount: 1, claimAhead: true)),
            .grant(GrantMessage(firstUnit: 0, unitCount: 0)),
            .hello(HelloMessage(
                jobID: jobID, dataFingerprint: fingerprint, capabilities: [.train, .evaluate, .meet],
                lanes: 1, blasCore: "Zen", workerName: "w", processID: 7)),
        ]
        return messages.enumerated().map { index, message in
            WireEnvelope(jobID: jobID, step: UInt64(100 + index), shardID: UInt32(index), message: message)
        }
    }

    /// What a transport would deliver for `frames`: the same bytes, no transport.
    static func loopback(_ frames: [OutgoingFrame]) -> [any IncomingFrame] {
        frames.map { ByteFrame($0) }
    }

    /// The encoded frames as plain byte arrays, for mutation.
    static func bytes(of envelope: WireEnvelope) throws -> [[UInt8]] {
        loopback(try WireProtocol.encode(envelope)).map(\.bytes)
    }

    static func frames(_ bytes: [[UInt8]]) -> [any IncomingFrame] {
        bytes.map { ByteFrame($0) }
    }

    static func decode(_ bytes: [[UInt8]]) throws -> WireEnvelope {
        try WireProtocol.decode(frames(bytes))
    }

    /// Writes `value` little-endian at `offset`.
    static func patch<T: FixedWidthInteger>(_ bytes: inout [UInt8], at offset: Int, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, byte) in raw.enumerated() { bytes[offset + i] = byte }
        }
    }

    /// Rewrites the header's length table to match the payload frames.
    static func fixLengths(_ message: inout [[UInt8]]) {
        for index in 1..<message.count where 56 + 8 * index <= message[0].count {
            patch(&message[0], at: 56 + 8 * (index - 1), UInt64(message[index].count))
        }
    }
}

/// SplitMix64: small, seeded, reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
