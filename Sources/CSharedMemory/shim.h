// Shared memory between processes on one host (Transport/SharedMemorySegment.swift): the
// mapping calls, and atomic access to the slot states that live inside a mapping, which Swift's
// own atomics cannot address (they need storage Swift owns).
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// A slot state: 0 free, 1 holding a frame its receiver has not finished with. Only the sender
// claims (0 → 1) and only the receiver releases (→ 0).
static inline int ssgd_slot_claim(uint32_t *state) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(state, &expected, 1u, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static inline void ssgd_slot_release(uint32_t *state) {
    __atomic_store_n(state, 0u, __ATOMIC_RELEASE);
}

static inline uint32_t ssgd_slot_load(const uint32_t *state) {
    return __atomic_load_n(state, __ATOMIC_ACQUIRE);
}

// open(2) is variadic, which Swift cannot call with a mode; these fixed-arity wrappers can.
static inline int ssgd_create_exclusive(const char *path) {
    return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static inline int ssgd_open_existing(const char *path) {
    return open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
}
