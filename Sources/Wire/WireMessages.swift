// Payload types of the wire protocol (the encoding itself lives in WireProtocol.swift).
// Plain values: every field a decoder produced has been validated.

import Engine

// MARK: - Shared pieces

/// A 32-byte digest (job id = hash of config and data fingerprint; data fingerprint).
public struct Digest32: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// nil unless `bytes` has exactly 32 elements.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// All zeros: "no job yet" (e.g. a worker's hello before it knows the config).
    public static let zero = Digest32(uncheckedBytes: [UInt8](repeating: 0, count: 32))

    init(uncheckedBytes: [UInt8]) { bytes = uncheckedBytes }

    /// 64 hex digits → 32 bytes.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.init(bytes: bytes)
    }

    /// 64 lowercase hex digits.
    public var hex: String { description }
    /// The first 12 hex digits, for log lines.
    public var short: String { String(hex.prefix(12)) }

    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// A float32 payload frame (little-endian IEEE 754 on the wire).
///
/// Outgoing, it borrows caller memory (a FloatBuffer or any Sendable owner) and is sent without
/// copying: do not write that memory until the SendTracker says the transport released it.
/// Decoded, it IS the received frame (no copy); read it with `copy(into:)` — one memcpy into
/// an arena — or in place with `withFloatsInPlace` where its bytes are aligned for Float (they
/// may not be).
public struct WireFloats: Equatable, Sendable {
    enum Storage {
        case outgoing(BorrowedRegion)
        case received(any IncomingFrame)
    }

    let storage: Storage
    /// Number of float32 values.
    public let count: Int

    /// The first `count` floats of `buffer` (all by default).
    public init(_ buffer: FloatBuffer, count: Int? = nil, tracker: SendTracker? = nil) {
        let n = count ?? buffer.count
        precondition(n >= 0 && n <= buffer.count, "WireFloats of \(n) from a buffer of \(buffer.count)")
        self.init(owner: buffer, pointer: UnsafePointer(buffer.pointer), count: n, tracker: tracker)
    }

    /// `count` floats at `pointer`, kept alive by `owner`.
    public init(
        owner: AnyObject & Sendable, pointer: UnsafePointer<Float>, count: Int, tracker: SendTracker? = nil
    ) {
        precondition(count >= 0, "WireFloats count must be non-negative, got \(count)")
        storage = .outgoing(
            BorrowedRegion(
                owner: owner, base: UnsafeRawPointer(pointer), byteCount: count * MemoryLayout<Float>.stride,
                tracker: tracker))
        self.count = count
    }

    /// A copy of `values` (convenience for small payloads and tests).
    public init(_ values: [Float]) { self.init(FloatBuffer(values)) }

    /// A received frame whose size is a multiple of 4 (checked by the decoder).
    init(received frame: any IncomingFrame) {
        storage = .received(frame)
        count = frame.byteCount / MemoryLayout<Float>.stride
    }

    public static let empty = WireFloats([])

    /// The frame this payload was decoded from, if any.
    public var receivedFrame: (any IncomingFrame)? {
        if case .received(let frame) = storage { return frame }
        return nil
    }

    var frame: OutgoingFrame {
        switch storage {
        case .outgoing(let region): count == 0 ? .bytes([]) : .borrowed(region)
        case .received(let frame): .bytes(frame.bytes)  // forwarding a received payload copies it
        }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .outgoing(let region): try region.withUnsafeBytes(body)
        case .received(let frame): try frame.withUnsafeBytes(body)
        }
    }

    /// Copies the `count` floats into `destination`.
    public func copy(into destination: UnsafeMutablePointer<Float>) {
        switch storage {
        case .outgoing(let region):
            region.withUnsafeBytes { source in
                guard let base = source.baseAddress else { return }
                UnsafeMutableRawPointer(destination).copyMemory(from: base, byteCount: source.count)
            }
        case .received(let frame):
            frame.copyFloats(into: destination)
        }
    }

    /// The floats where they lie, for reading inside `body` without a copy; nil when they cannot
    /// be read in place (bytes not aligned for Float, or a big-endian host, where the wire's
    /// little-endian values need converting): then read them with `copy(into:)`.
    public func withFloatsInPlace<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        #if _endian(big)
        return try body(nil)
        #else
        return try withUnsafeBytes { raw in
            guard count > 0, let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else {
                return try body(nil)
            }
            return try body(base.assumingMemoryBound(to: Float.self))
        }
        #endif
    }

    public func toArray() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { copy(into: base) }
            initialized = count
        }
    }

    /// Equal when the float bit patterns are equal (so NaN payloads compare equal to themselves).
    public static func == (lhs: WireFloats, rhs: WireFloats) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }
}

// MARK: - Messages

public enum WireKind: UInt16, Sendable, CaseIterable {
    case hello = 1
    case welcome = 2
    case task = 3
    case result = 4
    case heartbeat = 5
    case shutdown = 6
    case error = 7
    case claim = 8
    case grant = 9
}

/// Capabilities a worker announces (unknown bits are carried, not rejected; bit 2 was version
/// 1's unserved Hessian-vector products).
public struct WorkerCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let train = WorkerCapabilities(rawValue: 1 << 0)
    public static let evaluate = WorkerCapabilities(rawValue: 1 << 1)
    /// Takes a train task's units from one end of a range it shares with another worker,
    /// claiming them one at a time (CLAIM / GRANT), until the two meet.
    public static let meet = WorkerCapabilities(rawValue: 1 << 3)
}

/// Worker → coordinator, first message on a connection.
public struct HelloMessage: Equatable, Sendable {
    public var protocolVersion: UInt16
    public var jobID: Digest32
    public var dataFingerprint: Digest32
    public var capabilities: WorkerCapabilities
    /// Single-threaded lanes the worker computes on (its --threads), at least 1.
    public var lanes: UInt32
    /// The worker's OpenBLAS core name (kernel), e.g. "Haswell" (UTF-8, at most
    /// WireLimits.maxBLASCoreBytes bytes): another kernel rounds differently.
    public var blasCore: String
    /// UTF-8, at most WireLimits.maxWorkerNameBytes bytes.
    public var workerName: String
    public var processID: UInt32

    public init(
        protocolVersion: UInt16 = WireProtocol.version, jobID: Digest32, dataFingerprint: Digest32,
        capabilities: WorkerCapabilities, lanes: UInt32, blasCore: String, workerName: String, processID: UInt32
    ) {
        self.protocolVersion = protocolVersion
        self.jobID = jobID
        self.dataFingerprint = dataFingerprint
        self.capabilities = capabilities
        self.lanes = lanes
        self.blasCore = blasCore
        self.workerName = workerName
        self.processID = processID
    }
}

/// Coordinator → worker: handshake accepted.
public struct WelcomeMessage: Equatable, Sendable {
    public var workerIndex: UInt32
    public var heartbeatIntervalMilliseconds: UInt32
    /// The resolved YAML config (UTF-8, at most WireLimits.maxConfigBytes), so the worker builds
    /// the same model.
    public var config: String

    public init(workerIndex: UInt32, heartbeatIntervalMilliseconds: UInt32, config: String) {
        self.workerIndex = workerIndex
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.config = config
    }
}

public enum TaskKind: UInt8, Sendable, CaseIterable {
    case train = 1
    case evaluate = 2
}

public enum DataSplit: UInt8, Sendable, CaseIterable {
    case train = 0
    case test = 1
}

/// Which units of its range a train task computes: all of them, or those it claims from one end
/// of a range it shares with another worker's task (the two take units until they meet).
public enum TaskEnd: UInt16, Sendable, CaseIterable {
    case whole = 0
    case left = 1
    case right = 2
}

/// Coordinator → worker: compute units `firstUnit ..< firstUnit + unitCount` of the step in the
/// header (or, for a task with an `end`, the units it is granted from that end of them). Units
/// are `unitSize` samples each; only an evaluate task's last unit may be short.
public struct TaskMessage: Equatable, Sendable {
    public var kind: TaskKind
    /// `.whole` except for a train task that meets another (see TaskEnd).
    public var end: TaskEnd
    public var epoch: UInt64
    public var firstUnit: UInt32
    public var unitCount: UInt32
    /// Samples per unit (the ghost batch).
    public var unitSize: UInt32
    public var split: DataSplit
    /// Dataset indices, unit after unit: (sampleCount) with sampleCount = unitCount·unitSize,
    /// or less for an evaluate task whose last unit is short.
    public var sampleIndices: [Int32]
    /// The floats to compute at: (P) parameters for a train task, (P + S) parameters then BN
    /// state for an evaluate task.
    public var parameters: WireFloats

    public init(
        kind: TaskKind, epoch: UInt64, firstUnit: UInt32, unitCount: UInt32, unitSize: UInt32,
        split: DataSplit, sampleIndices: [Int32], parameters: WireFloats, end: TaskEnd = .whole
    ) {
        self.kind = kind
        self.end = end
        self.epoch = epoch
        self.firstUnit = firstUnit
        self.unitCount = unitCount
        self.unitSize = unitSize
        self.split = split
        self.sampleIndices = sampleIndices
        self.parameters = parameters
    }
}

/// The gradient sum of the aligned block of units `firstUnit ..< firstUnit + unitCount`.
public struct GradientBlock: Equatable, Sendable {
    public var firstUnit: UInt32
    public var unitCount: UInt32
    /// (P) sum over the block's samples, in the fixed pairwise tree order.
    public var gradient: WireFloats

    public init(firstUnit: UInt32, unitCount: UInt32, gradient: WireFloats) {
        self.firstUnit = firstUnit
        self.unitCount = unitCount
        self.gradient = gradient
    }
}

/// Worker → coordinator: the outcome of one task.
public struct ResultMessage: Equatable, Sendable {
    public var taskKind: TaskKind
    public var firstUnit: UInt32
    public var unitCount: UInt32
    /// (unitCount) loss summed over each unit's samples.
    public var lossSums: [Double]
    /// (unitCount) correctly classified samples per unit.
    public var correctCounts: [UInt32]
    /// (unitCount) samples per unit.
    public var sampleCounts: [UInt32]
    /// Blocks tiling the unit range in order (none for evaluate tasks), all of length P.
    public var gradientBlocks: [GradientBlock]
    /// Batch-norm statistics floats per unit (0 if the model has no batch norm).
    public var statisticsPerUnit: UInt32
    /// (unitCount, statisticsPerUnit) per-unit batch-norm statistics.
    public var batchStatistics: WireFloats
    /// Wall time the worker spent computing, in seconds.
    public var computeSeconds: Double

    public init(
        taskKind: TaskKind, firstUnit: UInt32, unitCount: UInt32, lossSums: [Double],
        correctCounts: [UInt32], sampleCounts: [UInt32], gradientBlocks: [GradientBlock],
        statisticsPerUnit: UInt32, batchStatistics: WireFloats, computeSeconds: Double
    ) {
        self.taskKind = taskKind
        self.firstUnit = firstUnit
        self.unitCount = unitCount
        self.lossSums = lossSums
        self.correctCounts = correctCounts
        self.sampleCounts = sampleCounts
        self.gradientBlocks = gradientBlocks
        self.statisticsPerUnit = statisticsPerUnit
        self.batchStatistics = batchStatistics
        self.computeSeconds = computeSeconds
    }
}

/// Worker → coordinator, for the task of the step and shard in the header (one with an end): the
/// next units from its end, at most `count`.
public struct ClaimMessage: Equatable, Sendable {
    public var count: UInt32

    public init(count: UInt32) { self.count = count }
}

/// Coordinator → worker: the answer to a CLAIM — units `firstUnit ..< firstUnit + unitCount`,
/// or none (`unitCount` 0: the two ends have met, the task is done once its units are) — and
/// whether the meeting point is far enough that the worker should claim its next unit before it
/// computes these (`claimAhead`).
public struct GrantMessage: Equatable, Sendable {
    public var firstUnit: UInt32
    public var unitCount: UInt32
    public var claimAhead: Bool

    public init(firstUnit: UInt32, unitCount: UInt32, claimAhead: Bool = false) {
        self.firstUnit = firstUnit
        self.unitCount = unitCount
        self.claimAhead = claimAhead
    }
}

/// Both directions: liveness while idle or busy.
public struct HeartbeatMessage: Equatable, Sendable {
    public var sequence: UInt64
    public var busy: Bool

    public init(sequence: UInt64, busy: Bool) {
        self.sequence = sequence
        self.busy = busy
    }
}

/// Coordinator → worker: stop after this message.
public struct ShutdownMessage: Equatable, Sendable {
    /// UTF-8, at most WireLimits.maxTextBytes.
    public var reason: String

    public init(reason: String) { self.reason = reason }
}

public enum WireErrorCode: UInt32, Sendable, CaseIterable {
    case versionMismatch = 1
    case jobMismatch = 2
    case dataMismatch = 3
    case configInvalid = 4
    case malformedMessage = 5
    case capabilityMissing = 6
    case unexpectedMessage = 7
    case internalError = 8
    /// The coordinator does not know this worker (e.g. it restarted): handshake again.
    case unknownWorker = 9
    /// The worker's OpenBLAS kernel differs from the coordinator's (and mixing is not allowed).
    case kernelMismatch = 10
}

/// Either direction: a refusal or failure, with a message for a human.
public struct ErrorMessage: Equatable, Sendable {
    public var code: WireErrorCode
    /// UTF-8, at most WireLimits.maxTextBytes.
    public var message: String

    public init(code: WireErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}

public enum WireMessage: Equatable, Sendable {
    case hello(HelloMessage)
    case welcome(WelcomeMessage)
    case task(TaskMessage)
    case result(ResultMessage)
    case heartbeat(HeartbeatMessage)
    case shutdown(ShutdownMessage)
    case error(ErrorMessage)
    case claim(ClaimMessage)
    case grant(GrantMessage)

    public var kind: WireKind {
        switch self {
        case .claim: .claim
        case .grant: .grant
        case .hello: .hello
        case .welcome: .welcome
        case .task: .task
        case .result: .result
        case .heartbeat: .heartbeat
        case .shutdown: .shutdown
        case .error: .error
        }
    }
}

/// A message with its header fields.
public struct WireEnvelope: Equatable, Sendable {
    public var jobID: Digest32
    public var step: UInt64
    public var shardID: UInt32
    public var message: WireMessage

    public var kind: WireKind { message.kind }

    public init(jobID: Digest32, step: UInt64 = 0, shardID: UInt32 = 0, message: WireMessage) {
        self.jobID = jobID
        self.step = step
        self.shardID = shardID
        self.message = message
    }
}
