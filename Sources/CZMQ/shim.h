// libzmq (Debian: libzmq3-dev).
#include <zmq.h>

// glibc's malloc tuning (mallopt, M_MMAP_MAX, M_TRIM_THRESHOLD), which the Glibc module leaves
// out: libzmq mallocs every received message, and Transport/HeapPolicy.swift keeps that memory
// from being unmapped and faulted in again for each one.
#include <malloc.h>
