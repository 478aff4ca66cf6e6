import Engine
import Foundation
import Testing
import Transport
import Wire

/// The same-host path: real ZeroMQ sockets, real /dev/shm segments, both ends in this process.
@Suite("Shared-memory frames between processes on one host")
struct SharedMemoryTransportTests {
    private static let patience = Duration.seconds(10)

    /// A wrapped ZeroMQ server, the wrapped connector of a worker, and the plain connector of
    /// another (which speaks the control frames by hand).
    struct Setup {
        let server: SharedMemoryServerTransport
        let connector: SharedMemoryConnector
        let plain: ZMQConnector
    }

    static func setup() throws -> Setup {
        let zeroMQ = try ZMQServerTransport(bind: "tcp://127.0.0.1:*")
        return Setup(
            server: SharedMemoryServerTransport(wrapping: zeroMQ, maximumFrameBytes: nil),
            connector: SharedMemoryConnector(wrapping: ZMQConnector(endpoint: zeroMQ.endpoint, workerName: "w1")),
            plain: ZMQConnector(endpoint: zeroMQ.endpoint, workerName: "w2"))
    }

    /// Control frames written from the format in SharedMemoryTransport.swift, independently of
    /// its encoder.
    static func control(_ kind: UInt8, _ body: [UInt8] = []) -> [UInt8] { Array("SSHM".utf8) + [kind] + body }
    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    static func name(_ text: String) -> [UInt8] { le(UInt16(text.utf8.count)) + Array(text.utf8) }

    @Test func largeFramesGoThroughSlotsBothWaysArriveIntactAndFreeTheirSlots() throws {
        let setup = try Self.setup()
        let main = try setup.connector.connect(.main)
        let worker = try #require(main as? SharedMemoryClientTransport)
        try main.send([.bytes([0])])
        let hello = try #require(try setup.server.receive(timeout: Self.patience))
        #expect(hello.frames.map(\.bytes) == [[0]], "the offer is the decorators' business, never delivered")
        #expect(setup.server.sharedMemoryPeers == 1)

        let floats = 1 << 20
        let parameters = FloatBuffer((0..<floats).map { Float($0 % 1013) * 0.25 })
        let gradient = FloatBuffer((0..<floats).map { Float($0 % 977) - 488 })
        let rounds = 20
        for round in 0..<rounds {
            let tracker = SendTracker()
            try setup.server.send([.bytes([1]), .floats(parameters, tracker: tracker)], to: hello.from)
            // Copied into a slot during the send: the borrowed memory is free at once.
            #expect(tracker.pendingCount == 0)
            do {
                let task = try #require(try main.receive(timeout: Self.patience))
                #expect(task.count == 2 && task[0].bytes == [1])
                #expect(task[1].floats() == parameters.toArray(), "round \(round): parameters")
            }
            #expect(worker.usesSharedMemory, "the ACCEPT came before the first task")
            try main.send([.bytes([2]), .floats(gradient)])
            let result = try #require(try setup.server.receive(timeout: Self.patience))
            let block = try #require(result.frames.last)
            let aligned = block.withUnsafeBytes { Int(bitPattern: $0.baseAddress) % 64 == 0 }
            #expect(aligned, "a slot starts on a page")
            #expect(block.floats() == gradient.toArray(), "round \(round): gradient")
        }
        // Every large frame went through a slot, and freed slots were reused rather than new
        // segments made: a few mappings, not one per round.
        #expect(setup.server.sharedBytes == 2 * rounds * floats * 4)
        #expect(worker.sharedBytes == 2 * rounds * floats * 4)
        #expect(setup.server.sendSegments == 1, "\(setup.server.sendSegments) segments for \(rounds) tasks")
        #expect(worker.sendSegments == 1, "\(worker.sendSegments) segments for \(rounds) results")
        main.close()
        setup.server.close()
    }

    @Test func aForgottenPeerIsDeclinedOnceThenOffersAgainAndGoesBackToSlots() throws {
        let setup = try Self.setup()
        defer { setup.server.close() }
        let main = try setup.connector.connect(.main)
        defer { main.close() }
        let worker = try #require(main as? SharedMemoryClientTransport)
        try main.send([.bytes([0])])
        let hello = try #require(try setup.server.receive(timeout: Self.patience))
        try setup.server.send([.bytes([1])], to: hello.from)
        _ = try #require(try main.receive(timeout: Self.patience))
        #expect(worker.usesSharedMemory)
        let gradient = FloatBuffer((0..<(1 << 18)).map { Float($0) })
        try main.send([.bytes([2]), .floats(gradient)])
        #expect(try setup.server.receive(timeout: Self.patience)?.frames.last?.floats() == gradient.toArray())

        // Declared dead, it keeps sending references to segments the coordinator let go of:
        // that message is lost, the worker is told, offers again and is back on slots.
        setup.server.forget(hello.from.peer)
        #expect(!setup.server.usesSharedMemory(with: hello.from.peer))
        try main.send([.bytes([3]), .floats(gradient)])
        #expect(try setup.server.receive(timeout: .milliseconds(500)) == nil)
        #expect(try main.receive(timeout: .milliseconds(500)) == nil, "the DECLINE is the decorator's business")
        #expect(!worker.usesSharedMemory)
        #expect(try setup.server.receive(timeout: .milliseconds(500)) == nil, "the new OFFER is the decorator's business")
        #expect(setup.server.usesSharedMemory(with: hello.from.peer))
        _ = try main.receive(timeout: .milliseconds(500))
        #expect(worker.usesSharedMemory)
        let before = worker.sharedBytes
        try main.send([.bytes([4]), .floats(gradient)])
        let again = try #require(try setup.server.receive(timeout: Self.patience))
        #expect(again.frames.first?.bytes == [4] && again.frames.last?.floats() == gradient.toArray())
        #expect(worker.sharedBytes == before + gradient.count * 4)
    }

    @Test func aPeerWhoseProbeCannotBeMappedIsDeclinedAndGetsBytes() throws {
        let setup = try Self.setup()
        defer { setup.server.close() }
        let main = try setup.plain.connect(.main)
        defer { main.close() }
        // A well-formed name that no file has (as a worker on another host would offer), and a
        // name that is no segment's at all.
        for offered in ["ssgd-1-" + String(repeating: "ab", count: 16), "../../etc/passwd"] {
            try main.send([.bytes(Self.control(1, Self.name(offered) + [UInt8](repeating: 7, count: 16)))])
            try main.send([.bytes([0])])
            let hello = try #require(try setup.server.receive(timeout: Self.patience))
            #expect(hello.frames.map(\.bytes) == [[0]])
            let answer = try #require(try main.receive(timeout: Self.patience))
            #expect(answer.map(\.bytes) == [Self.control(3)], "DECLINE")
            #expect(setup.server.sharedMemoryPeers == 0)
            // Large frames to it travel as bytes, with no control frame in front.
            let payload = FloatBuffer((0..<(1 << 18)).map(Float.init))
            try setup.server.send([.bytes([1]), .floats(payload)], to: hello.from)
            let task = try #require(try main.receive(timeout: Self.patience))
            #expect(task.count == 2 && task[0].bytes == [1])
            #expect(task[1].floats() == payload.toArray())
        }
        #expect(setup.server.sharedBytes == 0)
    }

    @Test func aReferenceToASegmentThatCannotBeMappedIsDroppedAndDeclined() throws {
        let setup = try Self.setup()
        defer { setup.server.close() }
        let main = try setup.plain.connect(.main)
        defer { main.close() }
        let missing = "ssgd-1-" + String(repeating: "cd", count: 16)
        let reference = Self.le(UInt32(1)) + Self.le(UInt32(1)) + Self.le(UInt32(0)) + Self.le(UInt64(4096)) + Self.name(missing)
        try main.send([.bytes(Self.control(4, reference)), .bytes([9]), .bytes([])])
        try main.send([.bytes([5])])
        // The message naming the segment never arrives; the next one does.
        let next = try #require(try setup.server.receive(timeout: Self.patience))
        #expect(next.frames.map(\.bytes) == [[5]])
        let answer = try #require(try main.receive(timeout: Self.patience))
        #expect(answer.map(\.bytes) == [Self.control(3)], "DECLINE")
    }

    @Test func segmentNamesOutsideTheSchemeAreRefused() {
        let good = "ssgd-42-" + String(repeating: "0f", count: 16)
        #expect(SharedMemorySegment.isValidName(good))
        for bad in ["", "ssgd-42", "ssgd--" + String(repeating: "0f", count: 16), "ssgd-42-" + String(repeating: "0F", count: 16),
                    "ssgd-42-" + String(repeating: "0f", count: 15), "../ssgd-42-" + String(repeating: "0f", count: 16),
                    "ssgd-4/2-" + String(repeating: "0f", count: 16), "x" + good] {
            #expect(!SharedMemorySegment.isValidName(bad), "\(bad)")
            #expect(throws: SharedMemoryError.self) { try SharedMemorySegment.open(name: bad) }
        }
    }

    @Test func aSegmentOpensOnceWithItsNonceAndItsSlotsAreClaimedAndReleased() throws {
        let created = try SharedMemorySegment.create(slotCount: 2, frameBytes: 10_000)
        let path = SharedMemorySegment.directory + "/" + created.name
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(created.slotBytes == 12_288)
        let opened = try SharedMemorySegment.open(name: created.name)
        #expect(opened.nonce == created.nonce && opened.slotCount == 2 && opened.slotBytes == created.slotBytes)
        // Opening removed the name: nothing is left behind, and nobody else can open it.
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(throws: SharedMemoryError.self) { try SharedMemorySegment.open(name: created.name) }
        #expect(created.slotsInUse == 0)
        // One nobody opened is removed by its creator.
        var unopened: SharedMemorySegment? = try SharedMemorySegment.create(slotCount: 1, frameBytes: 1)
        let unopenedPath = SharedMemorySegment.directory + "/" + unopened!.name
        #expect(FileManager.default.fileExists(atPath: unopenedPath))
        unopened = nil
        #expect(!FileManager.default.fileExists(atPath: unopenedPath))
    }

    @Test func aFileWithAValidNameButNotASegmentIsRefused() throws {
        let name = "ssgd-\(getpid())-" + String(repeating: "ee", count: 16)
        let path = SharedMemorySegment.directory + "/" + name
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: SharedMemoryError.self) { try SharedMemorySegment.open(name: name) }
    }
}
