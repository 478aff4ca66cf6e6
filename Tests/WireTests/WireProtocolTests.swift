import Engine
import Testing
import Wire

@Suite("Wire protocol")
struct WireProtocolTests {
    @Test("every message kind survives encode then decode unchanged")
    func everyKindRoundTrips() throws {
        let samples = WireSamples.all()
        #expect(Set(samples.map(\.kind)) == Set(WireKind.allCases))
        for envelope in samples {
            let decoded = try WireProtocol.decode(WireSamples.loopback(try WireProtocol.encode(envelope)))
            #expect(decoded == envelope, "\(envelope.kind)")
        }
    }

    @Test("the header has the documented little-endian layout")
    func headerLayout() throws {
        let envelope = WireEnvelope(
            jobID: WireSamples.jobID, step: 0x0102_0304_0506_0708, shardID: 0x0A0B_0C0D,
            message: .heartbeat(HeartbeatMessage(sequence: 5, busy: false)))
        let frames = try WireSamples.bytes(of: envelope)
        let header = frames[0]
        #expect(frames.count == 2)
        #expect(header.count == 56 + 8)
        #expect(Array(header[0..<4]) == Array("SSGD".utf8))
        #expect(Array(header[4..<8]) == [3, 0, 5, 0])
        #expect(Array(header[8..<40]) == WireSamples.jobID.bytes)
        #expect(Array(header[40..<48]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(header[48..<52]) == [0x0D, 0x0C, 0x0B, 0x0A])
        #expect(Array(header[52..<56]) == [1, 0, 0, 0])
        #expect(Array(header[56..<64]) == [9, 0, 0, 0, 0, 0, 0, 0])
        #expect(frames[1] == [5, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("a hello has the documented layout: lanes, then the name and the OpenBLAS core name")
    func helloLayout() throws {
        let hello = HelloMessage(
            jobID: WireSamples.jobID, dataFingerprint: WireSamples.fingerprint, capabilities: [.train, .evaluate],
            lanes: 3, blasCore: "Zen", workerName: "w1", processID: 0x0102_0304)
        let frames = try WireSamples.bytes(of: WireEnvelope(jobID: .zero, message: .hello(hello)))
        #expect(frames.count == 2)
        let payload = frames[1]
        #expect(payload.count == 85 + 2 + 3)
        #expect(Array(payload[0..<2]) == [3, 0])
        #expect(Array(payload[2..<34]) == WireSamples.jobID.bytes)
        #expect(Array(payload[34..<66]) == WireSamples.fingerprint.bytes)
        #expect(Array(payload[66..<74]) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(payload[74..<78]) == [3, 0, 0, 0])
        #expect(Array(payload[78..<82]) == [4, 3, 2, 1])
        #expect(Array(payload[82..<84]) == [2, 0])
        #expect(payload[84] == 3)
        #expect(Array(payload[85...]) == Array("w1Zen".utf8))
    }

    @Test("decoded float payloads are the received frames, not copies")
    func decodedFloatsAreReceivedFrames() throws {
        let parameters = FloatBuffer((0..<1000).map { Float($0) })
        let task = TaskMessage(
            kind: .train, epoch: 0, firstUnit: 0, unitCount: 1, unitSize: 1, split: .train,
            sampleIndices: [0], parameters: WireFloats(parameters))
        let frames = WireSamples.loopback(
            try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .task(task))))
        guard case .task(let decoded) = try WireProtocol.decode(frames).message else {
            Issue.record("not a task")
            return
        }
        #expect(decoded.parameters.receivedFrame === frames[3])
        let copy = FloatBuffer(count: 1000)
        decoded.parameters.copy(into: copy.pointer)
        #expect(copy.toArray() == parameters.toArray())
    }

    /// Frames whose bytes start one byte into their storage, as a receive buffer shared by small
    /// frames can leave them.
    private final class MisalignedFrame: IncomingFrame {
        let storage: [UInt8]
        init(_ bytes: [UInt8]) { storage = [0] + bytes }
        var byteCount: Int { storage.count - 1 }
        func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[1...])) }
        }
    }

    @Test("received floats are read in place when aligned, and copied when not")
    func receivedFloatsInPlaceOnlyWhenAligned() throws {
        let values = (0..<257).map { Float($0) * 0.5 - 3 }
        let task = TaskMessage(
            kind: .train, epoch: 0, firstUnit: 0, unitCount: 1, unitSize: 1, split: .train,
            sampleIndices: [0], parameters: WireFloats(values))
        var frames = WireSamples.loopback(try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .task(task))))
        guard case .task(let aligned) = try WireProtocol.decode(frames).message else {
            Issue.record("not a task")
            return
        }
        let inPlace = aligned.parameters.withFloatsInPlace { pointer in pointer.map { Array(UnsafeBufferPointer(start: $0, count: values.count)) } }
        #expect(inPlace == values)
        frames[3] = MisalignedFrame(frames[3].bytes)
        guard case .task(let misaligned) = try WireProtocol.decode(frames).message else {
            Issue.record("not a task")
            return
        }
        #expect(misaligned.parameters.withFloatsInPlace { $0 == nil })
        #expect(misaligned.parameters.toArray() == values)
    }

    // MARK: - Malformed input

    private var heartbeat: [[UInt8]] {
        get throws { try WireSamples.bytes(of: WireSamples.all()[6]) }
    }

    @Test("a wrong magic is rejected as not an ssgd message")
    func wrongMagic() throws {
        var message = try heartbeat
        message[0][0] = UInt8(ascii: "X")
        #expect(throws: WireError.badMagic(Array("XSGD".utf8))) { try WireSamples.decode(message) }
    }

    @Test("another protocol version is rejected, version 1 with a message naming both versions")
    func wrongVersion() throws {
        for version: UInt16 in [0, 1, 2, 99] {
            var message = try heartbeat
            WireSamples.patch(&message[0], at: 4, version)
            #expect(throws: WireError.unsupportedVersion(version)) { try WireSamples.decode(message) }
        }
        #expect(WireError.unsupportedVersion(1).description
            == "protocol version 1, this build speaks 3 — run the same ssgd version everywhere")
    }

    @Test("version 1's Hessian-vector-product task is gone: task kind 3 and a fourth task frame are rejected")
    func noHessianVectorProductTask() throws {
        var kind3 = try WireSamples.bytes(of: WireSamples.all()[2])  // train task
        kind3[1][0] = 3
        #expect(throws: WireError.valueOutOfRange(.task, field: "taskKind", value: 3, allowed: "1...2")) {
            try WireSamples.decode(kind3)
        }
        var direction = try WireSamples.bytes(of: WireSamples.all()[2])
        direction.append(direction[3])
        WireSamples.patch(&direction[0], at: 52, UInt32(4))
        direction[0] += [UInt8](repeating: 0, count: 8)
        WireSamples.fixLengths(&direction)
        #expect(throws: WireError.payloadFrameCount(.task, expected: "3", actual: 4)) { try WireSamples.decode(direction) }
        var result = try WireSamples.bytes(of: WireSamples.all()[4])  // train result
        result[1][0] = 3
        #expect(throws: WireError.valueOutOfRange(.result, field: "taskKind", value: 3, allowed: "1...2")) {
            try WireSamples.decode(result)
        }
    }

    @Test("a task's end is 0, 1 or 2 at offset 2 of its spec, and only a train task has one other than 0")
    func taskEnd() throws {
        let right = try WireSamples.bytes(of: WireSamples.all()[9])
        #expect(right[1][2] == 2 && right[1][3] == 0, "little-endian u16 after taskKind and split")
        var beyond = right
        beyond[1][2] = 3
        #expect(throws: WireError.valueOutOfRange(.task, field: "end", value: 3, allowed: "0...2")) { try WireSamples.decode(beyond) }
        var evaluate = try WireSamples.bytes(of: WireSamples.all()[3])
        evaluate[1][2] = 1
        #expect(throws: WireError.invalidValue(.task, field: "end", reason: "an evaluate task computes its whole range")) {
            try WireSamples.decode(evaluate)
        }
    }

    @Test("a claim asks for at least one unit; a grant of none is allowed, one past UInt32 or with unknown flags is not")
    func claimAndGrant() throws {
        var none = try WireSamples.bytes(of: WireSamples.all()[11])
        WireSamples.patch(&none[1], at: 0, UInt32(0))
        #expect(throws: WireError.valueOutOfRange(.claim, field: "count", value: 0, allowed: "1...\(WireLimits.maxUnits)")) {
            try WireSamples.decode(none)
        }
        var overflow = try WireSamples.bytes(of: WireSamples.all()[12])
        WireSamples.patch(&overflow[1], at: 0, UInt32.max)
        #expect(throws: WireError.invalidValue(.grant, field: "firstUnit", reason: "firstUnit + unitCount overflows UInt32")) {
            try WireSamples.decode(overflow)
        }
        var flags = try WireSamples.bytes(of: WireSamples.all()[12])
        WireSamples.patch(&flags[1], at: 8, UInt32(2))
        #expect(throws: WireError.valueOutOfRange(.grant, field: "flags", value: 2, allowed: "0...1")) { try WireSamples.decode(flags) }
        #expect(try WireSamples.bytes(of: WireSamples.all()[12])[1] == [7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], "first, count, flags")
        var short = try WireSamples.bytes(of: WireSamples.all()[12])
        short[1].removeLast()
        WireSamples.fixLengths(&short)
        #expect(throws: WireError.self) { try WireSamples.decode(short) }
        // A train result of no units carries no block; one with statistics or blocks is refused.
        var statistics = try WireSamples.bytes(of: WireSamples.all()[10])
        statistics[2] = [0, 0, 0, 0, 0, 0, 0, 0]
        WireSamples.fixLengths(&statistics)
        #expect(throws: WireError.self) { try WireSamples.decode(statistics) }
    }

    @Test("an unknown message kind is rejected")
    func unknownKind() throws {
        var message = try heartbeat
        WireSamples.patch(&message[0], at: 6, UInt16(99))
        #expect(throws: WireError.unknownKind(99)) { try WireSamples.decode(message) }
    }

    @Test("a truncated header is rejected, including a truncated length table")
    func truncatedHeader() throws {
        var message = try heartbeat
        message[0] = Array(message[0].prefix(20))
        #expect(throws: WireError.truncatedHeader(byteCount: 20, needed: 56)) { try WireSamples.decode(message) }
        var shortTable = try heartbeat
        shortTable[0].removeLast()
        #expect(throws: WireError.truncatedHeader(byteCount: 63, needed: 64)) { try WireSamples.decode(shortTable) }
        var longTable = try heartbeat
        longTable[0].append(0)
        #expect(throws: WireError.headerLengthMismatch(expected: 64, actual: 65)) {
            try WireSamples.decode(longTable)
        }
        #expect(throws: WireError.missingHeader) { try WireSamples.decode([]) }
    }

    @Test("a frame count that differs from the header is rejected")
    func frameCountMismatch() throws {
        var missing = try heartbeat
        missing.removeLast()
        #expect(throws: WireError.frameCountMismatch(declared: 1, actual: 0)) { try WireSamples.decode(missing) }
        var extra = try heartbeat
        extra.append([1, 2, 3])
        #expect(throws: WireError.frameCountMismatch(declared: 1, actual: 2)) { try WireSamples.decode(extra) }
    }

    @Test("a frame whose length differs from the header is rejected")
    func lengthMismatch() throws {
        var message = try heartbeat
        message[1].append(0)
        #expect(throws: WireError.frameLengthMismatch(frame: 1, declared: 9, actual: 10)) {
            try WireSamples.decode(message)
        }
    }

    @Test("a float frame that is not whole float32 values is rejected")
    func floatFrameNotMultipleOf4() throws {
        var message = try WireSamples.bytes(of: WireSamples.all()[2])  // train task
        message[3].append(0)
        WireSamples.fixLengths(&message)
        #expect(throws: WireError.floatFrameNotWholeFloats(.task, field: "parameters", byteCount: 49)) {
            try WireSamples.decode(message)
        }
    }

    @Test("absurd declared sizes are rejected before anything is allocated")
    func oversizedDeclarations() throws {
        var huge = try heartbeat
        WireSamples.patch(&huge[0], at: 56, UInt64(1) << 40)
        #expect(throws: WireError.frameTooLarge(frame: 1, declared: 1 << 40, limit: WireLimits.maxFrameBytes)) {
            try WireSamples.decode(huge)
        }
        var manyFrames = try heartbeat
        WireSamples.patch(&manyFrames[0], at: 52, UInt32.max)
        #expect(throws: WireError.tooManyFrames(declared: UInt32.max, limit: WireLimits.maxPayloadFrames)) {
            try WireSamples.decode(manyFrames)
        }
        // A result summary claiming 2^32-1 units in a 64-byte frame.
        var result = try WireSamples.bytes(of: WireSamples.all()[5])
        WireSamples.patch(&result[1], at: 8, UInt32.max)
        #expect(
            throws: WireError.valueOutOfRange(
                .result, field: "unitCount", value: Int64(UInt32.max), allowed: "0...\(WireLimits.maxUnits)")
        ) { try WireSamples.decode(result) }
        // A task claiming more samples than its index frame holds.
        var task = try WireSamples.bytes(of: WireSamples.all()[2])
        WireSamples.patch(&task[1], at: 24, UInt32(1 << 30))
        #expect(throws: WireError.payloadLength(.task, field: "sampleIndices", expected: 1 << 32, actual: 24)) {
            try WireSamples.decode(task)
        }
    }

    @Test("payload rules are enforced by the decoder and the encoder alike")
    func payloadRules() throws {
        // Text that is not UTF-8.
        var shutdown = try WireSamples.bytes(of: WireSamples.all()[7])
        shutdown[1] = [0x66, 0xFF, 0x66]
        WireSamples.fixLengths(&shutdown)
        #expect(throws: WireError.invalidUTF8(.shutdown, field: "reason")) { try WireSamples.decode(shutdown) }

        // Result blocks that do not tile the unit range.
        var gap = try WireSamples.bytes(of: WireSamples.all()[4])
        WireSamples.patch(&gap[1], at: 28 + 16 * 3 + 8, UInt32(7))
        #expect(throws: WireError.self) { try WireSamples.decode(gap) }

        // A heartbeat busy flag that is neither 0 nor 1.
        var busy = try heartbeat
        busy[1][8] = 2
        #expect(throws: WireError.valueOutOfRange(.heartbeat, field: "busy", value: 2, allowed: "0...1")) {
            try WireSamples.decode(busy)
        }

        // A hello whose core name runs past its frame, or that has no lanes.
        var longCore = try WireSamples.bytes(of: WireSamples.all()[0])
        longCore[1][84] = 9  // "SkylakeX" is 8 bytes
        #expect(throws: WireError.payloadLength(.hello, field: "frame", expected: 85 + 19 + 9, actual: 85 + 19 + 8)) {
            try WireSamples.decode(longCore)
        }
        var noLanes = try WireSamples.bytes(of: WireSamples.all()[0])
        WireSamples.patch(&noLanes[1], at: 74, UInt32(0))
        #expect(throws: WireError.valueOutOfRange(.hello, field: "lanes", value: 0, allowed: "1...\(UInt32.max)")) {
            try WireSamples.decode(noLanes)
        }

        // The encoder refuses what the decoder would refuse.
        let longName = HelloMessage(
            jobID: .zero, dataFingerprint: .zero, capabilities: [], lanes: 1, blasCore: "Haswell",
            workerName: String(repeating: "w", count: 257), processID: 1)
        #expect(throws: WireError.self) { try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .hello(longName))) }
        let longCoreName = HelloMessage(
            jobID: .zero, dataFingerprint: .zero, capabilities: [], lanes: 1,
            blasCore: String(repeating: "c", count: WireLimits.maxBLASCoreBytes + 1), workerName: "w", processID: 1)
        #expect(
            throws: WireError.valueOutOfRange(.hello, field: "blasCore bytes", value: 65, allowed: "0...64")
        ) { try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .hello(longCoreName))) }
        let shortTrain = TaskMessage(
            kind: .train, epoch: 0, firstUnit: 0, unitCount: 2, unitSize: 3, split: .train,
            sampleIndices: [1, 2, 3, 4, 5], parameters: .empty)
        #expect(throws: WireError.self) { try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .task(shortTrain))) }
        let huge = TaskMessage(
            kind: .train, epoch: 0, firstUnit: 0, unitCount: 1 << 20, unitSize: 1 << 16, split: .train,
            sampleIndices: [], parameters: .empty)
        #expect(
            throws: WireError.valueOutOfRange(
                .task, field: "unitCount·unitSize", value: 1 << 36, allowed: "1...\(WireLimits.maxSamplesPerTask)")
        ) { try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .task(huge))) }
    }

    @Test("an evaluate task may end with a short unit but not an empty one")
    func evaluateShortLastUnit() throws {
        func evaluate(_ samples: Int) -> WireEnvelope {
            WireEnvelope(
                jobID: .zero,
                message: .task(
                    TaskMessage(
                        kind: .evaluate, epoch: 0, firstUnit: 0, unitCount: 2, unitSize: 4, split: .test,
                        sampleIndices: (0..<samples).map { Int32($0) }, parameters: .empty)))
        }
        for samples in 5...8 {
            #expect(try WireSamples.decode(try WireSamples.bytes(of: evaluate(samples))) == evaluate(samples))
        }
        #expect(throws: WireError.self) { try WireProtocol.encode(evaluate(4)) }
        #expect(throws: WireError.self) { try WireProtocol.encode(evaluate(9)) }
    }

    @Test("the largest legitimate frame of a job bounds every frame of its largest messages")
    func largestFrameBoundsTheJobsMessages() throws {
        let sizes = WireJobSizes(parameterCount: 300_000, stateCount: 10, statisticsPerUnit: 8, unitsPerTask: 12, samplesPerTask: 192)
        let limit = WireLimits.largestFrameBytes(sizes)
        #expect(limit == 4 * 300_010)  // the evaluate task's parameters and BN state dominate
        let evaluate = TaskMessage(
            kind: .evaluate, epoch: 0, firstUnit: 0, unitCount: 12, unitSize: 16, split: .test,
            sampleIndices: (0..<192).map { Int32($0) }, parameters: WireFloats([Float](repeating: 1, count: 300_010)))
        let units = 0..<12
        let result = ResultMessage(
            taskKind: .train, firstUnit: 0, unitCount: 12, lossSums: units.map { _ in 1 }, correctCounts: units.map { _ in 1 },
            sampleCounts: units.map { _ in 16 },
            gradientBlocks: [GradientBlock(firstUnit: 0, unitCount: 8, gradient: WireFloats([Float](repeating: 1, count: 300_000))),
                             GradientBlock(firstUnit: 8, unitCount: 4, gradient: WireFloats([Float](repeating: 1, count: 300_000)))],
            statisticsPerUnit: 8, batchStatistics: WireFloats([Float](repeating: 0, count: 96)), computeSeconds: 1)
        let welcome = WelcomeMessage(
            workerIndex: 0, heartbeatIntervalMilliseconds: 1000, config: String(repeating: "x", count: WireLimits.maxConfigBytes))
        let error = ErrorMessage(code: .internalError, message: String(repeating: "e", count: WireLimits.maxTextBytes))
        for message in [WireMessage.task(evaluate), .result(result), .welcome(welcome), .error(error)] {
            let frames = try WireProtocol.encode(WireEnvelope(jobID: WireSamples.jobID, message: message))
            #expect(frames.allSatisfy { $0.byteCount <= limit }, "\(message)")
        }
        // A job of a small model still takes any control message.
        let small = WireLimits.largestFrameBytes(WireJobSizes(parameterCount: 10, stateCount: 0, statisticsPerUnit: 0, unitsPerTask: 1, samplesPerTask: 16))
        #expect(small == WireLimits.largestControlFrameBytes)
        #expect(try WireProtocol.encode(WireEnvelope(jobID: WireSamples.jobID, message: .welcome(welcome))).allSatisfy { $0.byteCount <= small })
    }
}
