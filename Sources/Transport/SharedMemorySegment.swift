// A file of slots in /dev/shm that two processes on one host map (SharedMemoryTransport.swift):
// the sender copies a large frame into a free slot and sends only its reference; the receiver
// reads the frame where it lies and frees the slot when it is done with it.
//
// Layout: a 4096-byte header, then `slotCount` slots of `slotBytes` each (a multiple of 4096,
// so every slot is page-aligned and so aligned for Float).
//   header offset  size  field
//               0     8  magic "SSGDSHM1"
//               8     4  slotCount (UInt32, ≤ maxSlots)
//              12     4  0
//              16     8  slotBytes (UInt64)
//              24    16  nonce: random bytes that prove to the creator that a peer mapped it
//              64  4·n   each slot's state (UInt32; 0 free, 1 in use), atomics (CSharedMemory)
//
// Names are "ssgd-PID-HEX" (32 hex digits), files mode 0600. The receiver removes a segment's
// name once it has mapped it, so nothing is left in /dev/shm while both run; the creator
// removes any it still names when it closes. Sizes are reserved with posix_fallocate when
// created, so a full /dev/shm is an error at creation (and a fallback to sending bytes), never
// a SIGBUS when a slot is written. Neither side ever shrinks a segment.

import CSharedMemory

#if canImport(Glibc)
import Glibc
#endif

public struct SharedMemoryError: Error, CustomStringConvertible, Equatable {
    public let description: String

    init(_ description: String) { self.description = description }

    static func system(_ what: String, _ code: Int32 = errno) -> SharedMemoryError {
        SharedMemoryError("\(what): \(String(cString: strerror(code)))")
    }
}

public final class SharedMemorySegment: @unchecked Sendable {
    // @unchecked Sendable: the mapping is fixed for the object's life; the slot states are
    // atomics; slot contents are written by the creator before the reference is sent and read
    // by the receiver after, which the message ordering (and the states) separate.

    public static let directory = "/dev/shm"
    static let headerBytes = 4096
    static let stateOffset = 64
    public static let maxSlots = (headerBytes - stateOffset) / 4
    static let magic = Array("SSGDSHM1".utf8)
    static let nonceBytes = 16

    public let name: String
    public let slotCount: Int
    public let slotBytes: Int
    public let nonce: [UInt8]
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int
    /// Whether this process created the segment (and removes its name at deinit, in case no
    /// peer mapped it).
    private let ownsName: Bool

    private init(name: String, slotCount: Int, slotBytes: Int, nonce: [UInt8], base: UnsafeMutableRawPointer, mappedBytes: Int, ownsName: Bool) {
        self.name = name
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        self.nonce = nonce
        self.base = base
        self.mappedBytes = mappedBytes
        self.ownsName = ownsName
    }

    deinit {
        munmap(base, mappedBytes)
        if ownsName { Glibc.unlink(Self.path(name)) }
    }

    static func path(_ name: String) -> String { directory + "/" + name }

    /// Whether `name` is one this code creates: "ssgd-" digits "-" 32 lowercase hex digits.
    /// Anything else (a path, "..") is refused before it reaches the file system.
    public static func isValidName(_ name: String) -> Bool {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "ssgd", !parts[1].isEmpty, parts[1].count <= 10,
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[2].count == 32 else { return false }
        return parts[2].allSatisfy { $0.isASCII && ($0.isNumber || ("a"..."f").contains($0)) }
    }

    /// Bytes a segment of `slotCount` slots of at least `frameBytes` each takes.
    static func slotBytes(for frameBytes: Int) -> Int { max(4096, (frameBytes + 4095) / 4096 * 4096) }

    /// A new segment of `slotCount` slots able to hold `frameBytes` each (none: a probe that
    /// only proves a peer can map what this process creates), its memory reserved.
    public static func create(slotCount: Int, frameBytes: Int) throws -> SharedMemorySegment {
        precondition((0...maxSlots).contains(slotCount), "a segment has 0…\(maxSlots) slots")
        let slotBytes = Self.slotBytes(for: frameBytes)
        let (total, overflow) = slotBytes.multipliedReportingOverflow(by: slotCount)
        guard !overflow, total <= Int.max - headerBytes else { throw SharedMemoryError("a segment of \(slotCount) × \(frameBytes) bytes is too large") }
        let size = headerBytes + total
        var generator = SystemRandomNumberGenerator()
        let id = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let nonce = (0..<nonceBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let name = "ssgd-\(getpid())-" + id.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let descriptor = ssgd_create_exclusive(path(name))
        guard descriptor >= 0 else { throw SharedMemoryError.system("cannot create \(path(name))") }
        defer { close(descriptor) }
        // posix_fallocate returns the error instead of setting errno.
        let reserved = posix_fallocate(descriptor, 0, off_t(size))
        guard reserved == 0 else {
            Glibc.unlink(path(name))
            throw SharedMemoryError.system("cannot reserve \(size) bytes in \(directory) (is it full, or too small?)", reserved)
        }
        guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapping != MAP_FAILED else {
            let code = errno
            Glibc.unlink(path(name))
            throw SharedMemoryError.system("cannot map \(path(name))", code)
        }
        mapping.copyMemory(from: magic, byteCount: magic.count)
        mapping.storeBytes(of: UInt32(slotCount).littleEndian, toByteOffset: 8, as: UInt32.self)
        mapping.storeBytes(of: UInt64(slotBytes).littleEndian, toByteOffset: 16, as: UInt64.self)
        (mapping + 24).copyMemory(from: nonce, byteCount: nonceBytes)
        // Slot states start at 0 (free): posix_fallocate's pages read as zeroes.
        return SharedMemorySegment(
            name: name, slotCount: slotCount, slotBytes: slotBytes, nonce: nonce, base: mapping, mappedBytes: size, ownsName: true)
    }

    /// Maps a segment that a peer on this host created, checks that it is a well-formed one of
    /// this user's, and removes its name (both sides now hold it; nothing is left behind).
    public static func open(name: String) throws -> SharedMemorySegment {
        guard isValidName(name) else { throw SharedMemoryError("'\(name)' is not a shared-memory segment name of ssgd") }
        let descriptor = ssgd_open_existing(path(name))
        guard descriptor >= 0 else { throw SharedMemoryError.system("cannot open \(path(name))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw SharedMemoryError.system("cannot stat \(path(name))") }
        guard status.st_mode & S_IFMT == S_IFREG, status.st_uid == geteuid() else {
            throw SharedMemoryError("\(path(name)) is not a regular file of this user")
        }
        var header = [UInt8](repeating: 0, count: 24)
        guard pread(descriptor, &header, header.count, 0) == header.count, Array(header[0..<8]) == magic else {
            throw SharedMemoryError("\(path(name)) is not an ssgd segment")
        }
        let slotCount = header.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self))) }
        let slotBytes = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) }
        guard slotCount <= maxSlots, slotBytes >= 4096, slotBytes % 4096 == 0, slotBytes <= UInt64(Int.max / max(slotCount, 1) - headerBytes),
              Int(status.st_size) == headerBytes + Int(slotBytes) * slotCount
        else { throw SharedMemoryError("\(path(name)) has an inconsistent header") }
        let size = Int(status.st_size)
        guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapping != MAP_FAILED else {
            throw SharedMemoryError.system("cannot map \(path(name))")
        }
        Glibc.unlink(path(name))
        let nonce = Array(UnsafeRawBufferPointer(start: mapping + 24, count: nonceBytes))
        return SharedMemorySegment(
            name: name, slotCount: slotCount, slotBytes: Int(slotBytes), nonce: nonce, base: mapping, mappedBytes: size, ownsName: false)
    }

    private func state(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        (base + Self.stateOffset).assumingMemoryBound(to: UInt32.self) + slot
    }

    /// Slot `slot`'s bytes.
    func slot(_ slot: Int) -> UnsafeMutableRawPointer {
        precondition(slot >= 0 && slot < slotCount, "slot \(slot) of \(slotCount)")
        return base + Self.headerBytes + slot * slotBytes
    }

    /// A free slot, now marked in use (creator's side), or nil if every slot is in use.
    func claimFreeSlot() -> Int? {
        (0..<slotCount).first { ssgd_slot_claim(state($0)) != 0 }
    }

    /// Marks `slot` free again (receiver's side: the frame in it will not be read again).
    func release(_ slot: Int) {
        precondition(slot >= 0 && slot < slotCount, "slot \(slot) of \(slotCount)")
        ssgd_slot_release(state(slot))
    }

    /// Slots in use, as the creator sees them.
    public var slotsInUse: Int { (0..<slotCount).filter { ssgd_slot_load(state($0)) != 0 }.count }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
