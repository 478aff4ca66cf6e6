// The ssgd wire protocol, version 3: the header, the message kinds, one encoder and one decoder
// per kind, and all validation. Payload types are in WireMessages.swift.
//
// Every message is a list of frames (WireFrames.swift; over ZeroMQ, one multipart message):
// frame 0 is the header, frames 1…n the payload. Addressing is the transport's business, not
// the codec's. All integers and floats are little-endian; floats are IEEE 754.
//
// Header (frame 0), 56 + 8·n bytes:
//   offset  size  field
//        0     4  magic "SSGD"
//        4     2  protocol version (UInt16) = 3
//        6     2  message kind (UInt16, WireKind)
//        8    32  job id
//       40     8  step (UInt64)
//       48     4  shard id (UInt32)
//       52     4  n = number of payload frames (UInt32)
//       56   8·n  byte length of payload frame i (UInt64 each)
//
// Payload frames per kind (u8/u16/u32/u64 unsigned integers, f64 Float64):
//   hello      1 frame:  u16 protocolVersion, 32 jobID, 32 dataFingerprint, u64 capabilities,
//                        u32 lanes (≥ 1), u32 processID, u16 nameLength, u8 blasCoreLength,
//                        name (UTF-8, ≤ 256), blasCore (UTF-8, ≤ 64: the worker's OpenBLAS core name)
//   welcome    2 frames: [u32 workerIndex, u32 heartbeatIntervalMs], [config UTF-8, ≤ 1 MiB]
//   task       3 frames: [u8 taskKind (1 train, 2 evaluate), u8 split, u16 end (0 whole; 1 left,
//                         2 right: train only), u64 epoch,
//                         u32 firstUnit, u32 unitCount, u32 unitSize,
//                         u32 sampleCount (≤ unitCount·unitSize ≤ 2^24)],
//                        [Int32 × sampleCount sample indices], [f32 × P parameters (+ S BN state
//                         for evaluate)]
//   result     2 + b:    [u8 taskKind, u8 0, u16 0, u32 firstUnit, u32 unitCount (u),
//                         u32 blockCount (b), u32 statsPerUnit (s), f64 computeSeconds,
//                         f64 × u lossSum, u32 × u correct, u32 × u samples,
//                         (u32 firstUnit, u32 unitCount) × b],
//                        [f32 × P gradient sum] × b, [f32 × u·s batch-norm statistics]
//   heartbeat  1 frame:  u64 sequence, u8 busy (0 or 1)
//   shutdown   1 frame:  reason UTF-8 (≤ 64 KiB)
//   error      2 frames: [u32 code], [message UTF-8 (≤ 64 KiB)]
//   claim      1 frame:  u32 count (≥ 1)
//   grant      1 frame:  u32 firstUnit, u32 unitCount (0: none left), u32 flags (bit 0: claim the
//                        next unit before computing these; other bits 0)
//
// Version 3 (against 2): a train task may name an end of its range; its worker then claims
// units from that end (CLAIM, answered by GRANT) while another worker claims from the other end,
// and its result covers the units it was granted — possibly none (a train result of 0 units
// carries no gradient block). Workers that can announce the `meet` capability.
//
// Version 2 (against 1): HELLO carries the worker's OpenBLAS core name and names its thread
// count `lanes`; the Hessian-vector-product task (task kind 3, its direction frame and its
// capability bit) is gone — nothing served it (`ssgd analyze` computes Hessians in one process).
//
// Decoding checks magic, version, kind, frame count, every declared length against its frame and
// against WireLimits (before anything is allocated from a declared count), internal lengths,
// float frames being whole floats, and every field's range. A bad message throws a WireError
// naming what is wrong; nothing here traps on input.
//
// Zero-copy: encoding returns the float payloads as borrowed frames of the caller's memory
// (see WireFloats). Decoding returns float payloads that are the received frames themselves;
// the consumer copies each once, into its own arena. Small frames are parsed from copies.

// MARK: - Limits and errors

public enum WireLimits {
    public static let maxPayloadFrames = 256
    /// Any single frame (2 GiB; the parameter frame of the largest model is far below).
    public static let maxFrameBytes = 1 << 31
    public static let maxWorkerNameBytes = 256
    /// The OpenBLAS core name in a HELLO (OpenBLAS's are short ASCII: "Haswell", "SkylakeX").
    public static let maxBLASCoreBytes = 64
    public static let maxConfigBytes = 1 << 20
    /// Shutdown reasons and error messages.
    public static let maxTextBytes = 1 << 16
    public static let maxUnits: UInt32 = 1 << 20
    public static let maxUnitSize: UInt32 = 1 << 16
    /// unitCount·unitSize of one task.
    public static let maxSamplesPerTask = 1 << 24
    public static let maxGradientBlocks: UInt32 = 64
    public static let maxStatisticsPerUnit: UInt32 = 1 << 20
}

/// What bounds the sizes of one job's messages: its model and its data.
public struct WireJobSizes: Equatable, Sendable {
    /// (P) parameters.
    public var parameterCount: Int
    /// (S) non-trainable state values (BN running statistics); evaluate tasks carry P + S floats.
    public var stateCount: Int
    /// Batch-norm statistics per work unit in a result.
    public var statisticsPerUnit: Int
    /// The most work units one task may cover (a step's, or an evaluation's chunks).
    public var unitsPerTask: Int
    /// The most sample indices one task may carry.
    public var samplesPerTask: Int

    public init(parameterCount: Int, stateCount: Int, statisticsPerUnit: Int, unitsPerTask: Int, samplesPerTask: Int) {
        self.parameterCount = parameterCount
        self.stateCount = stateCount
        self.statisticsPerUnit = statisticsPerUnit
        self.unitsPerTask = unitsPerTask
        self.samplesPerTask = samplesPerTask
    }
}

extension WireLimits {
    /// The largest frame of the messages whose size does not depend on the job: any header,
    /// hello, welcome (its config), heartbeat, shutdown and error.
    public static let largestControlFrameBytes = max(
        maxConfigBytes, WireProtocol.fixedHeaderBytes + 8 * maxPayloadFrames,
        WireProtocol.helloFixedBytes + maxWorkerNameBytes + maxBLASCoreBytes, maxTextBytes, 9)

    /// The largest frame a message of this job may legitimately have (per the layouts above):
    /// a transport may refuse anything larger before allocating it.
    public static func largestFrameBytes(_ sizes: WireJobSizes) -> Int {
        let float = MemoryLayout<Float>.stride
        return max(
            largestControlFrameBytes,
            WireProtocol.taskSpecBytes,
            4 * sizes.samplesPerTask,  // task: sample indices
            float * (sizes.parameterCount + sizes.stateCount),  // task: parameters (+ BN state)
            WireProtocol.resultFixedBytes + 16 * sizes.unitsPerTask + 8 * Int(maxGradientBlocks),  // result summary
            float * sizes.unitsPerTask * sizes.statisticsPerUnit)  // result: batch-norm statistics; gradients: P
    }
}

public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingHeader
    case truncatedHeader(byteCount: Int, needed: Int)
    case headerLengthMismatch(expected: Int, actual: Int)
    case badMagic([UInt8])
    case unsupportedVersion(UInt16)
    case unknownKind(UInt16)
    case tooManyFrames(declared: UInt32, limit: Int)
    case frameCountMismatch(declared: Int, actual: Int)
    /// `frame` counts from the header (0); payload frames are 1…n.
    case frameTooLarge(frame: Int, declared: UInt64, limit: Int)
    case frameLengthMismatch(frame: Int, declared: UInt64, actual: Int)
    case payloadFrameCount(WireKind, expected: String, actual: Int)
    case payloadLength(WireKind, field: String, expected: Int, actual: Int)
    case floatFrameNotWholeFloats(WireKind, field: String, byteCount: Int)
    case valueOutOfRange(WireKind, field: String, value: Int64, allowed: String)
    case invalidValue(WireKind, field: String, reason: String)
    case invalidUTF8(WireKind, field: String)

    public var description: String {
        switch self {
        case .missingHeader: "message has no frames"
        case .truncatedHeader(let count, let needed):
            "header frame is \(count) bytes, needs at least \(needed)"
        case .headerLengthMismatch(let expected, let actual):
            "header frame is \(actual) bytes, its frame count implies \(expected)"
        case .badMagic(let bytes): "bad magic \(bytes), expected \"SSGD\" — not an ssgd message"
        case .unsupportedVersion(let version):
            "protocol version \(version), this build speaks \(WireProtocol.version) — run the same ssgd version everywhere"
        case .unknownKind(let kind): "unknown message kind \(kind)"
        case .tooManyFrames(let declared, let limit):
            "header declares \(declared) payload frames, limit \(limit)"
        case .frameCountMismatch(let declared, let actual):
            "header declares \(declared) payload frames, message has \(actual)"
        case .frameTooLarge(let frame, let declared, let limit):
            "frame \(frame) declared \(declared) bytes, limit \(limit)"
        case .frameLengthMismatch(let frame, let declared, let actual):
            "frame \(frame) declared \(declared) bytes, has \(actual)"
        case .payloadFrameCount(let kind, let expected, let actual):
            "\(kind) message has \(actual) payload frames, expected \(expected)"
        case .payloadLength(let kind, let field, let expected, let actual):
            "\(kind).\(field) is \(actual) bytes, expected \(expected)"
        case .floatFrameNotWholeFloats(let kind, let field, let count):
            "\(kind).\(field) is \(count) bytes, not a multiple of 4 (float32)"
        case .valueOutOfRange(let kind, let field, let value, let allowed):
            "\(kind).\(field) = \(value), allowed \(allowed)"
        case .invalidValue(let kind, let field, let reason): "\(kind).\(field): \(reason)"
        case .invalidUTF8(let kind, let field): "\(kind).\(field) is not valid UTF-8"
        }
    }
}

// MARK: - Header

public struct WireHeader: Equatable, Sendable {
    public var kind: WireKind
    public var jobID: Digest32
    public var step: UInt64
    public var shardID: UInt32
    /// Byte length of each payload frame.
    public var payloadLengths: [UInt64]
}

public enum WireProtocol {
    public static let version: UInt16 = 3
    public static let magic: [UInt8] = Array("SSGD".utf8)
    /// Header bytes before the payload-length table.
    public static let fixedHeaderBytes = 56

    // MARK: Envelope

    /// Header + payload frames for `envelope`; float payloads are borrowed, not copied.
    /// Throws WireError if the message breaks a rule the decoder would reject.
    public static func encode(_ envelope: WireEnvelope) throws -> [OutgoingFrame] {
        let payload: [OutgoingFrame]
        switch envelope.message {
        case .hello(let message): payload = try encodeHello(message)
        case .welcome(let message): payload = try encodeWelcome(message)
        case .task(let message): payload = try encodeTask(message)
        case .result(let message): payload = try encodeResult(message)
        case .heartbeat(let message): payload = encodeHeartbeat(message)
        case .shutdown(let message): payload = try encodeShutdown(message)
        case .error(let message): payload = try encodeError(message)
        case .claim(let message): payload = try encodeClaim(message)
        case .grant(let message): payload = encodeGrant(message)
        }
        let header = WireHeader(
            kind: envelope.kind, jobID: envelope.jobID, step: envelope.step, shardID: envelope.shardID,
            payloadLengths: payload.map { UInt64($0.byteCount) })
        return [.bytes(encodeHeader(header))] + payload
    }

    /// Decodes and validates a whole message (header first; no routing-id frame).
    public static func decode(_ frames: [any IncomingFrame]) throws -> WireEnvelope {
        guard let first = frames.first else { throw WireError.missingHeader }
        let header = try decodeHeader(first)
        let payload = Array(frames.dropFirst())
        guard payload.count == header.payloadLengths.count else {
            throw WireError.frameCountMismatch(declared: header.payloadLengths.count, actual: payload.count)
        }
        for (index, (declared, frame)) in zip(header.payloadLengths, payload).enumerated() {
            guard declared <= UInt64(WireLimits.maxFrameBytes) else {
                throw WireError.frameTooLarge(frame: index + 1, declared: declared, limit: WireLimits.maxFrameBytes)
            }
            guard declared == UInt64(frame.byteCount) else {
                throw WireError.frameLengthMismatch(frame: index + 1, declared: declared, actual: frame.byteCount)
            }
        }
        let message: WireMessage
        switch header.kind {
        case .hello: message = .hello(try decodeHello(payload))
        case .welcome: message = .welcome(try decodeWelcome(payload))
        case .task: message = .task(try decodeTask(payload))
        case .result: message = .result(try decodeResult(payload))
        case .heartbeat: message = .heartbeat(try decodeHeartbeat(payload))
        case .shutdown: message = .shutdown(try decodeShutdown(payload))
        case .error: message = .error(try decodeError(payload))
        case .claim: message = .claim(try decodeClaim(payload))
        case .grant: message = .grant(try decodeGrant(payload))
        }
        return WireEnvelope(jobID: header.jobID, step: header.step, shardID: header.shardID, message: message)
    }

    // MARK: Header

    static func encodeHeader(_ header: WireHeader) -> [UInt8] {
        var writer = WireWriter(capacity: fixedHeaderBytes + 8 * header.payloadLengths.count)
        writer.bytes(magic)
        writer.u16(version)
        writer.u16(header.kind.rawValue)
        writer.bytes(header.jobID.bytes)
        writer.u64(header.step)
        writer.u32(header.shardID)
        writer.u32(UInt32(header.payloadLengths.count))
        for length in header.payloadLengths { writer.u64(length) }
        return writer.output
    }

    /// Decodes and checks frame 0 alone (useful to log what a dropped message claimed to be).
    public static func decodeHeader(_ frame: any IncomingFrame) throws -> WireHeader {
        try frame.withUnsafeBytes { raw in
            guard raw.count >= fixedHeaderBytes else {
                throw WireError.truncatedHeader(byteCount: raw.count, needed: fixedHeaderBytes)
            }
            var reader = WireReader(raw, kind: nil)
            let magicBytes = try reader.bytes(4, "magic")
            guard magicBytes == magic else { throw WireError.badMagic(magicBytes) }
            let version = try reader.u16("version")
            guard version == self.version else { throw WireError.unsupportedVersion(version) }
            let rawKind = try reader.u16("kind")
            guard let kind = WireKind(rawValue: rawKind) else { throw WireError.unknownKind(rawKind) }
            let jobID = Digest32(uncheckedBytes: try reader.bytes(32, "jobID"))
            let step = try reader.u64("step")
            let shardID = try reader.u32("shardID")
            let frameCount = try reader.u32("frameCount")
            guard frameCount <= UInt32(WireLimits.maxPayloadFrames) else {
                throw WireError.tooManyFrames(declared: frameCount, limit: WireLimits.maxPayloadFrames)
            }
            let expected = fixedHeaderBytes + 8 * Int(frameCount)
            guard raw.count >= expected else { throw WireError.truncatedHeader(byteCount: raw.count, needed: expected) }
            guard raw.count == expected else {
                throw WireError.headerLengthMismatch(expected: expected, actual: raw.count)
            }
            var lengths: [UInt64] = []
            lengths.reserveCapacity(Int(frameCount))
            for _ in 0..<frameCount { lengths.append(try reader.u64("payloadLength")) }
            return WireHeader(kind: kind, jobID: jobID, step: step, shardID: shardID, payloadLengths: lengths)
        }
    }

    // MARK: hello

    static let helloFixedBytes = 2 + 32 + 32 + 8 + 4 + 4 + 2 + 1

    static func encodeHello(_ hello: HelloMessage) throws -> [OutgoingFrame] {
        try hello.validate()
        let name = Array(hello.workerName.utf8)
        let core = Array(hello.blasCore.utf8)
        var writer = WireWriter(capacity: helloFixedBytes + name.count + core.count)
        writer.u16(hello.protocolVersion)
        writer.bytes(hello.jobID.bytes)
        writer.bytes(hello.dataFingerprint.bytes)
        writer.u64(hello.capabilities.rawValue)
        writer.u32(hello.lanes)
        writer.u32(hello.processID)
        writer.u16(UInt16(name.count))
        writer.u8(UInt8(core.count))
        writer.bytes(name)
        writer.bytes(core)
        return [.bytes(writer.output)]
    }

    static func decodeHello(_ frames: [any IncomingFrame]) throws -> HelloMessage {
        try expectFrames(.hello, frames, "1", frames.count == 1)
        let hello = try frames[0].withUnsafeBytes { raw in
            try expectAtLeast(.hello, "frame", raw.count, helloFixedBytes)
            var reader = WireReader(raw, kind: .hello)
            let protocolVersion = try reader.u16("protocolVersion")
            let jobID = Digest32(uncheckedBytes: try reader.bytes(32, "jobID"))
            let fingerprint = Digest32(uncheckedBytes: try reader.bytes(32, "dataFingerprint"))
            let capabilities = WorkerCapabilities(rawValue: try reader.u64("capabilities"))
            let lanes = try reader.u32("lanes")
            let processID = try reader.u32("processID")
            let nameLength = Int(try reader.u16("nameLength"))
            let coreLength = Int(try reader.u8("blasCoreLength"))
            try expectRange(.hello, "nameLength", nameLength, 0...WireLimits.maxWorkerNameBytes)
            try expectRange(.hello, "blasCoreLength", coreLength, 0...WireLimits.maxBLASCoreBytes)
            try expectLength(.hello, "frame", raw.count, helloFixedBytes + nameLength + coreLength)
            let name = try reader.text(nameLength, "workerName")
            let core = try reader.text(coreLength, "blasCore")
            return HelloMessage(
                protocolVersion: protocolVersion, jobID: jobID, dataFingerprint: fingerprint,
                capabilities: capabilities, lanes: lanes, blasCore: core, workerName: name, processID: processID)
        }
        try hello.validate()
        return hello
    }

    // MARK: welcome

    static func encodeWelcome(_ welcome: WelcomeMessage) throws -> [OutgoingFrame] {
        try welcome.validate()
        var writer = WireWriter(capacity: 8)
        writer.u32(welcome.workerIndex)
        writer.u32(welcome.heartbeatIntervalMilliseconds)
        return [.bytes(writer.output), .bytes(Array(welcome.config.utf8))]
    }

    static func decodeWelcome(_ frames: [any IncomingFrame]) throws -> WelcomeMessage {
        try expectFrames(.welcome, frames, "2", frames.count == 2)
        let (index, interval) = try frames[0].withUnsafeBytes { raw in
            try expectLength(.welcome, "frame", raw.count, 8)
            var reader = WireReader(raw, kind: .welcome)
            return (try reader.u32("workerIndex"), try reader.u32("heartbeatIntervalMilliseconds"))
        }
        let config = try frames[1].withUnsafeBytes { raw in
            try expectRange(.welcome, "config bytes", raw.count, 0...WireLimits.maxConfigBytes)
            var reader = WireReader(raw, kind: .welcome)
            return try reader.text(raw.count, "config")
        }
        let welcome = WelcomeMessage(workerIndex: index, heartbeatIntervalMilliseconds: interval, config: config)
        try welcome.validate()
        return welcome
    }

    // MARK: task

    static let taskSpecBytes = 1 + 1 + 2 + 8 + 4 + 4 + 4 + 4

    static func encodeTask(_ task: TaskMessage) throws -> [OutgoingFrame] {
        try task.validate()
        var spec = WireWriter(capacity: taskSpecBytes)
        spec.u8(task.kind.rawValue)
        spec.u8(task.split.rawValue)
        spec.u16(task.end.rawValue)
        spec.u64(task.epoch)
        spec.u32(task.firstUnit)
        spec.u32(task.unitCount)
        spec.u32(task.unitSize)
        spec.u32(UInt32(task.sampleIndices.count))
        var indices = WireWriter(capacity: 4 * task.sampleIndices.count)
        for index in task.sampleIndices { indices.u32(UInt32(bitPattern: index)) }
        return [.bytes(spec.output), .bytes(indices.output), task.parameters.frame]
    }

    static func decodeTask(_ frames: [any IncomingFrame]) throws -> TaskMessage {
        try expectFrames(.task, frames, "3", frames.count == 3)
        let (kind, split, end, epoch, firstUnit, unitCount, unitSize, sampleCount) = try frames[0].withUnsafeBytes { raw in
            try expectLength(.task, "spec", raw.count, taskSpecBytes)
            var reader = WireReader(raw, kind: .task)
            let rawKind = try reader.u8("taskKind")
            guard let kind = TaskKind(rawValue: rawKind) else {
                throw WireError.valueOutOfRange(.task, field: "taskKind", value: Int64(rawKind), allowed: "1...2")
            }
            let rawSplit = try reader.u8("split")
            guard let split = DataSplit(rawValue: rawSplit) else {
                throw WireError.valueOutOfRange(.task, field: "split", value: Int64(rawSplit), allowed: "0...1")
            }
            let rawEnd = try reader.u16("end")
            guard let end = TaskEnd(rawValue: rawEnd) else {
                throw WireError.valueOutOfRange(.task, field: "end", value: Int64(rawEnd), allowed: "0...2")
            }
            return (
                kind, split, end, try reader.u64("epoch"), try reader.u32("firstUnit"), try reader.u32("unitCount"),
                try reader.u32("unitSize"), try reader.u32("sampleCount")
            )
        }
        // The index frame's size bounds the allocation below.
        try expectLength(.task, "sampleIndices", frames[1].byteCount, 4 * Int(sampleCount))
        let indices = frames[1].withUnsafeBytes { raw in
            [Int32](unsafeUninitializedCapacity: Int(sampleCount)) { buffer, initialized in
                for i in 0..<Int(sampleCount) {
                    buffer[i] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                }
                initialized = Int(sampleCount)
            }
        }
        let parameters = try floats(.task, "parameters", frames[2])
        let task = TaskMessage(
            kind: kind, epoch: epoch, firstUnit: firstUnit, unitCount: unitCount, unitSize: unitSize,
            split: split, sampleIndices: indices, parameters: parameters, end: end)
        try task.validate()
        return task
    }

    // MARK: result

    static let resultFixedBytes = 1 + 1 + 2 + 4 + 4 + 4 + 4 + 8

    static func encodeResult(_ result: ResultMessage) throws -> [OutgoingFrame] {
        try result.validate()
        let units = Int(result.unitCount)
        let blocks = result.gradientBlocks.count
        var summary = WireWriter(capacity: resultFixedBytes + 16 * units + 8 * blocks)
        summary.u8(result.taskKind.rawValue)
        summary.u8(0)
        summary.u16(0)
        summary.u32(result.firstUnit)
        summary.u32(result.unitCount)
        summary.u32(UInt32(blocks))
        summary.u32(result.statisticsPerUnit)
        summary.f64(result.computeSeconds)
        for loss in result.lossSums { summary.f64(loss) }
        for correct in result.correctCounts { summary.u32(correct) }
        for samples in result.sampleCounts { summary.u32(samples) }
        for block in result.gradientBlocks {
            summary.u32(block.firstUnit)
            summary.u32(block.unitCount)
        }
        return [.bytes(summary.output)] + result.gradientBlocks.map { $0.gradient.frame }
            + [result.batchStatistics.frame]
    }

    static func decodeResult(_ frames: [any IncomingFrame]) throws -> ResultMessage {
        try expectFrames(.result, frames, "at least 2", frames.count >= 2)
        let parsed = try frames[0].withUnsafeBytes { raw in
            try expectAtLeast(.result, "summary", raw.count, resultFixedBytes)
            var reader = WireReader(raw, kind: .result)
            let rawKind = try reader.u8("taskKind")
            guard let kind = TaskKind(rawValue: rawKind) else {
                throw WireError.valueOutOfRange(.result, field: "taskKind", value: Int64(rawKind), allowed: "1...2")
            }
            try expectRange(.result, "reserved", Int(try reader.u8("reserved")), 0...0)
            try expectRange(.result, "reserved", Int(try reader.u16("reserved")), 0...0)
            let firstUnit = try reader.u32("firstUnit")
            let unitCount = try reader.u32("unitCount")
            let blockCount = try reader.u32("blockCount")
            let statisticsPerUnit = try reader.u32("statisticsPerUnit")
            let computeSeconds = try reader.f64("computeSeconds")
            // Counts are checked against limits and the frame size before any array is built.
            try expectRange(.result, "unitCount", Int(unitCount), 0...Int(WireLimits.maxUnits))
            try expectRange(.result, "blockCount", Int(blockCount), 0...Int(WireLimits.maxGradientBlocks))
            try expectRange(
                .result, "statisticsPerUnit", Int(statisticsPerUnit), 0...Int(WireLimits.maxStatisticsPerUnit))
            try expectLength(
                .result, "summary", raw.count, resultFixedBytes + 16 * Int(unitCount) + 8 * Int(blockCount))
            try expectFrames(.result, frames, "\(2 + blockCount) (2 + blockCount)", frames.count == 2 + Int(blockCount))
            let units = Int(unitCount)
            var losses: [Double] = []
            var correct: [UInt32] = []
            var samples: [UInt32] = []
            var ranges: [(UInt32, UInt32)] = []
            losses.reserveCapacity(units)
            correct.reserveCapacity(units)
            samples.reserveCapacity(units)
            for _ in 0..<units { losses.append(try reader.f64("lossSums")) }
            for _ in 0..<units { correct.append(try reader.u32("correctCounts")) }
            for _ in 0..<units { samples.append(try reader.u32("sampleCounts")) }
            for _ in 0..<blockCount { ranges.append((try reader.u32("block.firstUnit"), try reader.u32("block.unitCount"))) }
            return (kind, firstUnit, unitCount, statisticsPerUnit, computeSeconds, losses, correct, samples, ranges)
        }
        var blocks: [GradientBlock] = []
        for (index, range) in parsed.8.enumerated() {
            let gradient = try floats(.result, "gradient[\(index)]", frames[1 + index])
            blocks.append(GradientBlock(firstUnit: range.0, unitCount: range.1, gradient: gradient))
        }
        let statistics = try floats(.result, "batchStatistics", frames[frames.count - 1])
        let result = ResultMessage(
            taskKind: parsed.0, firstUnit: parsed.1, unitCount: parsed.2, lossSums: parsed.5,
            correctCounts: parsed.6, sampleCounts: parsed.7, gradientBlocks: blocks,
            statisticsPerUnit: parsed.3, batchStatistics: statistics, computeSeconds: parsed.4)
        try result.validate()
        return result
    }

    // MARK: heartbeat

    static func encodeHeartbeat(_ heartbeat: HeartbeatMessage) -> [OutgoingFrame] {
        var writer = WireWriter(capacity: 9)
        writer.u64(heartbeat.sequence)
        writer.u8(heartbeat.busy ? 1 : 0)
        return [.bytes(writer.output)]
    }

    static func decodeHeartbeat(_ frames: [any IncomingFrame]) throws -> HeartbeatMessage {
        try expectFrames(.heartbeat, frames, "1", frames.count == 1)
        return try frames[0].withUnsafeBytes { raw in
            try expectLength(.heartbeat, "frame", raw.count, 9)
            var reader = WireReader(raw, kind: .heartbeat)
            let sequence = try reader.u64("sequence")
            let busy = try reader.u8("busy")
            try expectRange(.heartbeat, "busy", Int(busy), 0...1)
            return HeartbeatMessage(sequence: sequence, busy: busy == 1)
        }
    }

    // MARK: claim and grant

    static func encodeClaim(_ claim: ClaimMessage) throws -> [OutgoingFrame] {
        try claim.validate()
        var writer = WireWriter(capacity: 4)
        writer.u32(claim.count)
        return [.bytes(writer.output)]
    }

    static func decodeClaim(_ frames: [any IncomingFrame]) throws -> ClaimMessage {
        try expectFrames(.claim, frames, "1", frames.count == 1)
        let claim = try frames[0].withUnsafeBytes { raw in
            try expectLength(.claim, "frame", raw.count, 4)
            var reader = WireReader(raw, kind: .claim)
            return ClaimMessage(count: try reader.u32("count"))
        }
        try claim.validate()
        return claim
    }

    static func encodeGrant(_ grant: GrantMessage) -> [OutgoingFrame] {
        var writer = WireWriter(capacity: 12)
        writer.u32(grant.firstUnit)
        writer.u32(grant.unitCount)
        writer.u32(grant.claimAhead ? 1 : 0)
        return [.bytes(writer.output)]
    }

    static func decodeGrant(_ frames: [any IncomingFrame]) throws -> GrantMessage {
        try expectFrames(.grant, frames, "1", frames.count == 1)
        return try frames[0].withUnsafeBytes { raw in
            try expectLength(.grant, "frame", raw.count, 12)
            var reader = WireReader(raw, kind: .grant)
            let (firstUnit, unitCount, flags) = (try reader.u32("firstUnit"), try reader.u32("unitCount"), try reader.u32("flags"))
            try expectRange(.grant, "flags", Int(flags), 0...1)
            let grant = GrantMessage(firstUnit: firstUnit, unitCount: unitCount, claimAhead: flags == 1)
            guard UInt64(grant.firstUnit) + UInt64(grant.unitCount) <= UInt64(UInt32.max) else {
                throw WireError.invalidValue(.grant, field: "firstUnit", reason: "firstUnit + unitCount overflows UInt32")
            }
            return grant
        }
    }

    // MARK: shutdown

    static func encodeShutdown(_ shutdown: ShutdownMessage) throws -> [OutgoingFrame] {
        try shutdown.validate()
        return [.bytes(Array(shutdown.reason.utf8))]
    }

    static func decodeShutdown(_ frames: [any IncomingFrame]) throws -> ShutdownMessage {
        try expectFrames(.shutdown, frames, "1", frames.count == 1)
        return ShutdownMessage(reason: try text(.shutdown, "reason", frames[0], limit: WireLimits.maxTextBytes))
    }

    // MARK: error

    static func encodeError(_ error: ErrorMessage) throws -> [OutgoingFrame] {
        try error.validate()
        var writer = WireWriter(capacity: 4)
        writer.u32(error.code.rawValue)
        return [.bytes(writer.output), .bytes(Array(error.message.utf8))]
    }

    static func decodeError(_ frames: [any IncomingFrame]) throws -> ErrorMessage {
        try expectFrames(.error, frames, "2", frames.count == 2)
        let code = try frames[0].withUnsafeBytes { raw in
            try expectLength(.error, "code", raw.count, 4)
            var reader = WireReader(raw, kind: .error)
            let rawCode = try reader.u32("code")
            guard let code = WireErrorCode(rawValue: rawCode) else {
                throw WireError.valueOutOfRange(
                    .error, field: "code", value: Int64(rawCode), allowed: "1...\(WireErrorCode.allCases.count)")
            }
            return code
        }
        return ErrorMessage(code: code, message: try text(.error, "message", frames[1], limit: WireLimits.maxTextBytes))
    }

    // MARK: Helpers

    private static func expectFrames(_ kind: WireKind, _ frames: [any IncomingFrame], _ expected: String, _ ok: Bool) throws {
        guard ok else { throw WireError.payloadFrameCount(kind, expected: expected, actual: frames.count) }
    }

    private static func expectLength(_ kind: WireKind, _ field: String, _ actual: Int, _ expected: Int) throws {
        guard actual == expected else {
            throw WireError.payloadLength(kind, field: field, expected: expected, actual: actual)
        }
    }

    private static func expectAtLeast(_ kind: WireKind, _ field: String, _ actual: Int, _ minimum: Int) throws {
        guard actual >= minimum else {
            throw WireError.payloadLength(kind, field: field, expected: minimum, actual: actual)
        }
    }

    fileprivate static func expectRange(_ kind: WireKind, _ field: String, _ value: Int, _ allowed: ClosedRange<Int>) throws {
        guard allowed.contains(value) else {
            throw WireError.valueOutOfRange(kind, field: field, value: Int64(value), allowed: "\(allowed)")
        }
    }

    private static func floats(_ kind: WireKind, _ field: String, _ frame: any IncomingFrame) throws -> WireFloats {
        guard frame.byteCount % MemoryLayout<Float>.stride == 0 else {
            throw WireError.floatFrameNotWholeFloats(kind, field: field, byteCount: frame.byteCount)
        }
        return WireFloats(received: frame)
    }

    private static func text(_ kind: WireKind, _ field: String, _ frame: any IncomingFrame, limit: Int) throws -> String {
        try frame.withUnsafeBytes { raw in
            try expectRange(kind, "\(field) bytes", raw.count, 0...limit)
            var reader = WireReader(raw, kind: kind)
            return try reader.text(raw.count, field)
        }
    }
}

// MARK: - Validation shared by encoders and decoders

extension HelloMessage {
    func validate() throws {
        try WireProtocol.expectRange(.hello, "workerName bytes", workerName.utf8.count, 0...WireLimits.maxWorkerNameBytes)
        try WireProtocol.expectRange(.hello, "blasCore bytes", blasCore.utf8.count, 0...WireLimits.maxBLASCoreBytes)
        try WireProtocol.expectRange(.hello, "lanes", Int(lanes), 1...Int(UInt32.max))
    }
}

extension WelcomeMessage {
    func validate() throws {
        try WireProtocol.expectRange(.welcome, "config bytes", config.utf8.count, 0...WireLimits.maxConfigBytes)
        guard heartbeatIntervalMilliseconds > 0 else {
            throw WireError.valueOutOfRange(.welcome, field: "heartbeatIntervalMilliseconds", value: 0, allowed: "≥ 1")
        }
    }
}

extension TaskMessage {
    func validate() throws {
        try WireProtocol.expectRange(.task, "unitCount", Int(unitCount), 1...Int(WireLimits.maxUnits))
        try WireProtocol.expectRange(.task, "unitSize", Int(unitSize), 1...Int(WireLimits.maxUnitSize))
        guard UInt64(firstUnit) + UInt64(unitCount) <= UInt64(UInt32.max) else {
            throw WireError.invalidValue(.task, field: "firstUnit", reason: "firstUnit + unitCount overflows UInt32")
        }
        let full = Int(unitCount) * Int(unitSize)
        try WireProtocol.expectRange(.task, "unitCount·unitSize", full, 1...WireLimits.maxSamplesPerTask)
        let samples = sampleIndices.count
        switch kind {
        case .train:
            guard samples == full else {
                throw WireError.invalidValue(
                    .task, field: "sampleCount",
                    reason: "\(samples) samples, a \(kind) task needs unitCount·unitSize = \(full)")
            }
        case .evaluate:
            // Only the last unit may be short, and it must not be empty.
            guard samples <= full && samples > full - Int(unitSize) else {
                throw WireError.invalidValue(
                    .task, field: "sampleCount",
                    reason: "\(samples) samples, an evaluate task needs \(full - Int(unitSize) + 1)…\(full)")
            }
        }
        if kind == .evaluate && end != .whole {
            throw WireError.invalidValue(.task, field: "end", reason: "an evaluate task computes its whole range")
        }
        if let negative = sampleIndices.first(where: { $0 < 0 }) {
            throw WireError.valueOutOfRange(.task, field: "sampleIndices", value: Int64(negative), allowed: "≥ 0")
        }
    }
}

extension ResultMessage {
    func validate() throws {
        let units = Int(unitCount)
        try WireProtocol.expectRange(.result, "unitCount", units, 0...Int(WireLimits.maxUnits))
        guard UInt64(firstUnit) + UInt64(unitCount) <= UInt64(UInt32.max) else {
            throw WireError.invalidValue(.result, field: "firstUnit", reason: "firstUnit + unitCount overflows UInt32")
        }
        for (field, count) in [("lossSums", lossSums.count), ("correctCounts", correctCounts.count), ("sampleCounts", sampleCounts.count)] {
            guard count == units else {
                throw WireError.invalidValue(.result, field: field, reason: "\(count) entries for \(units) units")
            }
        }
        for (correct, samples) in zip(correctCounts, sampleCounts) where correct > samples {
            throw WireError.invalidValue(.result, field: "correctCounts", reason: "\(correct) correct of \(samples) samples")
        }
        try WireProtocol.expectRange(
            .result, "blockCount", gradientBlocks.count, 0...Int(WireLimits.maxGradientBlocks))
        switch taskKind {
        case .evaluate:
            guard gradientBlocks.isEmpty else {
                throw WireError.invalidValue(.result, field: "gradientBlocks", reason: "an evaluate result carries none")
            }
        case .train:
            // The blocks tile firstUnit ..< firstUnit + unitCount in order (none for no units:
            // a task that met another may be granted none).
            guard !gradientBlocks.isEmpty || unitCount == 0 else {
                throw WireError.invalidValue(.result, field: "gradientBlocks", reason: "a \(taskKind) result needs at least one")
            }
            var next = UInt64(firstUnit)
            for block in gradientBlocks {
                guard block.firstUnit == next, block.unitCount > 0 else {
                    throw WireError.invalidValue(
                        .result, field: "gradientBlocks",
                        reason: "block at unit \(block.firstUnit) of \(block.unitCount) units, expected one starting at \(next)")
                }
                next += UInt64(block.unitCount)
            }
            guard next == UInt64(firstUnit) + UInt64(unitCount) else {
                throw WireError.invalidValue(
                    .result, field: "gradientBlocks", reason: "blocks end at unit \(next), the range at \(firstUnit + unitCount)")
            }
            let length = gradientBlocks.first?.gradient.count ?? 0
            guard gradientBlocks.allSatisfy({ $0.gradient.count == length }) else {
                throw WireError.invalidValue(.result, field: "gradientBlocks", reason: "gradients of different lengths")
            }
        }
        try WireProtocol.expectRange(
            .result, "statisticsPerUnit", Int(statisticsPerUnit), 0...Int(WireLimits.maxStatisticsPerUnit))
        let statistics = units * Int(statisticsPerUnit)
        guard batchStatistics.count == statistics else {
            throw WireError.invalidValue(
                .result, field: "batchStatistics",
                reason: "\(batchStatistics.count) floats, unitCount·statisticsPerUnit = \(statistics)")
        }
        guard computeSeconds.isFinite && computeSeconds >= 0 else {
            throw WireError.invalidValue(.result, field: "computeSeconds", reason: "\(computeSeconds) is not a duration")
        }
    }
}

extension ClaimMessage {
    func validate() throws {
        try WireProtocol.expectRange(.claim, "count", Int(count), 1...Int(WireLimits.maxUnits))
    }
}

extension ShutdownMessage {
    func validate() throws {
        try WireProtocol.expectRange(.shutdown, "reason bytes", reason.utf8.count, 0...WireLimits.maxTextBytes)
    }
}

extension ErrorMessage {
    func validate() throws {
        try WireProtocol.expectRange(.error, "message bytes", message.utf8.count, 0...WireLimits.maxTextBytes)
    }
}

// MARK: - Little-endian byte writer and reader

struct WireWriter {
    private(set) var output: [UInt8] = []

    init(capacity: Int) { output.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { output.append(value) }
    mutating func u16(_ value: UInt16) { append(value) }
    mutating func u32(_ value: UInt32) { append(value) }
    mutating func u64(_ value: UInt64) { append(value) }
    mutating func f64(_ value: Double) { append(value.bitPattern) }
    mutating func bytes(_ value: [UInt8]) { output.append(contentsOf: value) }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) }
    }
}

/// Reads from a frame's bytes in place; every read is bounds-checked.
struct WireReader {
    private let raw: UnsafeRawBufferPointer
    private let kind: WireKind?
    private var offset = 0

    init(_ raw: UnsafeRawBufferPointer, kind: WireKind?) {
        self.raw = raw
        self.kind = kind
    }

    private mutating func take(_ count: Int, _ field: String) throws -> Int {
        guard count >= 0, count <= raw.count - offset else {
            guard let kind else { throw WireError.truncatedHeader(byteCount: raw.count, needed: offset + count) }
            throw WireError.payloadLength(kind, field: field, expected: offset + count, actual: raw.count)
        }
        defer { offset += count }
        return offset
    }

    private mutating func integer<T: FixedWidthInteger>(_ field: String, as: T.Type) throws -> T {
        let at = try take(MemoryLayout<T>.size, field)
        return T(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    mutating func u8(_ field: String) throws -> UInt8 { try integer(field, as: UInt8.self) }
    mutating func u16(_ field: String) throws -> UInt16 { try integer(field, as: UInt16.self) }
    mutating func u32(_ field: String) throws -> UInt32 { try integer(field, as: UInt32.self) }
    mutating func u64(_ field: String) throws -> UInt64 { try integer(field, as: UInt64.self) }
    mutating func f64(_ field: String) throws -> Double { Double(bitPattern: try u64(field)) }

    mutating func bytes(_ count: Int, _ field: String) throws -> [UInt8] {
        let at = try take(count, field)
        return Array(raw[at..<at + count])
    }

    mutating func text(_ count: Int, _ field: String) throws -> String {
        let at = try take(count, field)
        guard let text = String(validating: raw[at..<at + count], as: UTF8.self) else {
            throw WireError.invalidUTF8(kind ?? .hello, field: field)
        }
        return text
    }
}
