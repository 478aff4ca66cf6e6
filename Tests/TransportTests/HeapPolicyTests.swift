import CZMQ
import Glibc
import Testing
import Transport

@Suite("Heap policy: freed memory is kept for reuse")
struct HeapPolicyTests {
    /// Larger than glibc's largest mmap threshold (32 MiB), so without the policy it is always a
    /// mapping of its own; below a thread arena's 64 MiB heap, so with it, heap memory.
    static let blockBytes = 40 << 20

    /// Minor page faults of the calling thread so far.
    static func threadFaults() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (1), which the Glibc module hides behind _GNU_SOURCE: other tests run
        // on other threads of this process at the same time.
        getrusage(__rusage_who_t(1), &usage)
        return usage.ru_minflt
    }

    /// Allocates, writes every page of and frees one block; returns this thread's page faults
    /// meanwhile and how much more memory glibc had mapped for single blocks while it was held.
    static func allocateTouchAndFree() -> (faults: Int, extraMappedBytes: Int) {
        let mappedBefore = mallinfo2().hblkhd
        let faultsBefore = threadFaults()
        let block = malloc(blockBytes)!
        memset(block, 1, blockBytes)
        let mappedDuring = mallinfo2().hblkhd
        free(block)
        return (threadFaults() - faultsBefore, Int(mappedDuring) - Int(mappedBefore))
    }

    @Test func aLargeBlockFreedIsReusedWithoutFaultingItsPagesInAgain() {
        let operatorSetPolicy = HeapPolicy.operatorVariables.contains { getenv($0) != nil }
        // The operator's own policy is left alone; without one, ssgd's takes effect.
        #expect(HeapPolicy.keepFreedMemory() == !operatorSetPolicy)
        guard !operatorSetPolicy else { return }
        let first = Self.allocateTouchAndFree()
        let second = Self.allocateTouchAndFree()
        let pages = Self.blockBytes / Int(getpagesize())
        // Heap memory, not a mapping of its own (which glibc would unmap on free).
        #expect(first.extraMappedBytes < Self.blockBytes, "\(first.extraMappedBytes) more bytes mapped for single blocks")
        #expect(second.extraMappedBytes < Self.blockBytes, "\(second.extraMappedBytes) more bytes mapped for single blocks")
        // The second block reuses the first one's pages: few faults, not one per page.
        #expect(second.faults < pages / 10, "\(second.faults) page faults for a reused block of \(pages) pages")
    }
}
