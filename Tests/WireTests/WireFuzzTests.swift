import Testing
import Wire

@Suite("Wire protocol fuzzing")
struct WireFuzzTests {
    @Test("a hundred thousand random and mutated messages never crash the decoder")
    func fuzzDecoder() throws {
        var random = SeededGenerator(seed: 0x55_47_44_31)
        let corpus = try WireSamples.all(parameterCount: 3).map { try WireSamples.bytes(of: $0) }
        var decoded = 0
        var rejected = 0
        var rejectedKinds = Set<Int>()
        var foreignErrors: [String] = []
        var reencodeMismatches = 0

        for _ in 0..<100_000 {
            var message = corpus[Int.random(in: 0..<corpus.count, using: &random)]
            mutate(&message, using: &random)
            let frames = WireSamples.frames(message)
            do {
                let envelope = try WireProtocol.decode(frames)
                decoded += 1
                // The decoder is strict, so whatever it accepts re-encodes to the same bytes.
                if try WireSamples.bytes(of: envelope) != message { reencodeMismatches += 1 }
            } catch let error as WireError {
                rejected += 1
                rejectedKinds.insert(caseNumber(error))
            } catch {
                foreignErrors.append("\(error)")
            }
        }
        #expect(foreignErrors.isEmpty, "\(foreignErrors.prefix(3))")
        #expect(reencodeMismatches == 0)
        #expect(decoded + rejected == 100_000)
        #expect(decoded > 1000, "mutations should leave some messages valid")
        #expect(rejected > 50_000)
        #expect(rejectedKinds.count > 10, "\(rejectedKinds)")
    }

    private func randomBytes(_ count: Int, _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var word: UInt64 = 0
        for i in 0..<count {
            if i % 8 == 0 { word = random.next() }
            bytes[i] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(i % 8)))
        }
        return bytes
    }

    /// Which WireError case (cheaper than formatting the description 100,000 times).
    private func caseNumber(_ error: WireError) -> Int {
        switch error {
        case .missingHeader: 0
        case .truncatedHeader: 1
        case .headerLengthMismatch: 2
        case .badMagic: 3
        case .unsupportedVersion: 4
        case .unknownKind: 5
        case .tooManyFrames: 6
        case .frameCountMismatch: 7
        case .frameTooLarge: 8
        case .frameLengthMismatch: 9
        case .payloadFrameCount: 10
        case .payloadLength: 11
        case .floatFrameNotWholeFloats: 12
        case .valueOutOfRange: 13
        case .invalidValue: 14
        case .invalidUTF8: 15
        }
    }

    private func mutate(_ message: inout [[UInt8]], using random: inout SeededGenerator) {
        func anyFrame() -> Int { Int.random(in: 0..<message.count, using: &random) }
        switch Int.random(in: 0..<10, using: &random) {
        case 0, 1:  // flip bytes anywhere
            for _ in 0...Int.random(in: 0..<3, using: &random) {
                let f = anyFrame()
                guard !message[f].isEmpty else { continue }
                let i = Int.random(in: 0..<message[f].count, using: &random)
                message[f][i] ^= UInt8.random(in: 1...255, using: &random)
            }
        case 2, 3:  // flip payload bytes only: passes the header, exercises the payload decoders
            guard message.count > 1 else { return }
            let f = Int.random(in: 1..<message.count, using: &random)
            guard !message[f].isEmpty else { return }
            let i = Int.random(in: 0..<message[f].count, using: &random)
            message[f][i] = UInt8.random(in: 0...255, using: &random)
        case 4:  // truncate a frame
            let f = anyFrame()
            message[f] = Array(message[f].prefix(Int.random(in: 0...message[f].count, using: &random)))
        case 5:  // resize a payload frame and keep the header consistent
            guard message.count > 1 else { return }
            let f = Int.random(in: 1..<message.count, using: &random)
            if Bool.random(using: &random), !message[f].isEmpty {
                message[f].removeLast(Int.random(in: 1...message[f].count, using: &random))
            } else {
                message[f] += randomBytes(Int.random(in: 1...9, using: &random), &random)
            }
            WireSamples.fixLengths(&message)
        case 6:  // duplicate or drop a frame
            let f = anyFrame()
            if Bool.random(using: &random) { message.insert(message[f], at: f) } else { message.remove(at: f) }
        case 7:  // overwrite a header field with a random value
            guard message.count > 0, message[0].count >= 56 else { return }
            let offsets = [4, 6, 52] + (56..<message[0].count).filter { ($0 - 56) % 8 == 0 }
            let offset = offsets[Int.random(in: 0..<offsets.count, using: &random)]
            if offset < 52 {
                WireSamples.patch(&message[0], at: offset, UInt16.random(in: 0...8, using: &random))
            } else if offset == 52 {
                WireSamples.patch(&message[0], at: offset, UInt32.random(in: 0...300, using: &random))
            } else {
                WireSamples.patch(&message[0], at: offset, UInt64.random(in: 0...UInt64.max, using: &random) >> 20)
            }
        case 8:  // pure random frames
            message = (0..<Int.random(in: 0...5, using: &random)).map { _ in
                randomBytes(Int.random(in: 0...80, using: &random), &random)
            }
        default:  // random frames behind a plausible header
            let kind = UInt16.random(in: 1...7, using: &random)
            let payloads = (0..<Int.random(in: 0...4, using: &random)).map { _ in
                randomBytes(Int.random(in: 0...64, using: &random), &random)
            }
            var header = [UInt8](repeating: 0, count: 56 + 8 * payloads.count)
            header.replaceSubrange(0..<4, with: Array("SSGD".utf8))
            WireSamples.patch(&header, at: 4, WireProtocol.version)
            WireSamples.patch(&header, at: 6, kind)
            WireSamples.patch(&header, at: 52, UInt32(payloads.count))
            message = [header] + payloads
            WireSamples.fixLengths(&message)
        }
    }
}
