// libzmq alone (no hpo code), over TCP on 127.0.0.1, plaintext or CURVE: the floor under
// what bench_security measures through the scheduler. Both ends live in this process.
//
// Threads: each call makes its own zmq::context_t and threads, and joins them before it
// returns; call from one thread.
#pragma once

namespace hpo::bench {

// Messages/s from a DEALER to a ROUTER (the sender in its own thread), `count` messages of
// `bytes` bytes, after an untimed first message (the handshake). 0 when keys cannot be made.
double zmq_stream(int bytes, int count, bool curve);

struct Burst {
  double wall_ms = 0;  // first connect -> the ROUTER has a message from every DEALER
  double cpu_ms = 0;   // CPU time of this process (user + system, all threads) over it
};

// `n` DEALERs connect at once to a ROUTER and send one message each. `zap`: a ZAP handler (a
// thread of this process that accepts every key, as the scheduler's does for a listed key)
// answers each CURVE handshake; without it libzmq accepts any client key.
Burst zmq_handshakes(int n, bool curve, bool zap);

}  // namespace hpo::bench
