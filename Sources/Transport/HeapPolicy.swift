import CZMQ

#if canImport(Glibc)
import Glibc
#endif

// Large buffers that come and go every step, above all the message libzmq mallocs for each
// received parameter or gradient frame (7.5 MB for the MLP, 60 MB for VGG-16), must not cost
// fresh pages each time. glibc serves an allocation above its mmap threshold (128 KiB, rising
// to at most 32 MiB) with a mapping of its own, unmapped again on free, and trims the heap's
// top back to the kernel; either way the next step faults every page in again and the kernel
// zeroes it. On the Zen 5 instance of docs/performance.md a first touch costs about 10 µs per
// 4 KiB page, and `ssgd launch --workers 2` on the MLP took 1,261 page faults per step; with
// freed memory kept, 1. So every ssgd process keeps what it frees: no mappings per allocation,
// no trimming. Peak memory is unchanged; memory goes back at exit rather than after each large
// free. Blocks that do not fit a thread arena's 64 MiB heaps (VGG-16's 60 MB messages, when
// libzmq's I/O thread allocates them) are still mapped for themselves: 20,661 faults per
// VGG-16 step remained, which shared memory (SharedMemoryTransport.swift) takes to none for
// workers on the coordinator's host.

public enum HeapPolicy {
    /// The environment variables with which an operator sets glibc's malloc policy;
    /// when any is set, ssgd leaves the policy alone.
    public static let operatorVariables = ["MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"]

    /// Keep freed memory for reuse (see above); false when the operator set a policy or the
    /// C library does not take the setting. Call once, at start-up, before threads allocate.
    @discardableResult
    public static func keepFreedMemory() -> Bool {
        #if canImport(Glibc)
        guard operatorVariables.allSatisfy({ getenv($0) == nil }) else { return false }
        // M_MMAP_MAX 0: every allocation from the heap; M_TRIM_THRESHOLD at its largest: never
        // give the heap's top back.
        return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, Int32.max) == 1
        #else
        return false
        #endif
    }
}
