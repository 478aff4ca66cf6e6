// libzmq (Debian: libzmq3-dev).
#include <zmq.h>
