// Linux process control, used so launched workers die with their launcher.
#include <sys/prctl.h>
#include <signal.h>

// prctl is variadic, which Swift cannot call; this fixed-arity wrapper can.
static inline int ssgd_die_with_parent(int signal_number) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal_number, 0UL, 0UL, 0UL);
}
