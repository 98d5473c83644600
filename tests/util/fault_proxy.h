/* fault_proxy.h: a small fault-injecting TCP proxy on loopback for tests:
 * clients connect to its port, it connects to 127.0.0.1:target and copies
 * bytes both ways, and on the way it can
 *   - drop a new connection before anything is forwarded (drop_pct),
 *   - delay every chunk it forwards (delay_ms),
 *   - cut a response: forward the client's request, let the server apply it
 *     and answer, then close both sides without passing the answer on
 *     (cut_pct): the client sees a dropped connection for a request that
 *     was applied, and must retry safely.
 * Decisions come from a seeded PRNG (deterministic per seed). Counters tell
 * what it did. One thread accepts, one thread per connection copies; stop
 * closes every socket and joins them. Memory is plain malloc/free. */
#ifndef CR_FAULT_PROXY_H
#define CR_FAULT_PROXY_H

#include <stdatomic.h>

typedef struct cr_fault_proxy cr_fault_proxy;

struct cr_fault_stats {
  long connections, dropped, cut, bytes_up, bytes_down;
};

/* Starts a proxy to 127.0.0.1:target_port on 127.0.0.1 (ephemeral port,
 * read with cr_fault_proxy_port). 0 or -1. */
int cr_fault_proxy_start(int target_port, unsigned seed, cr_fault_proxy **out);
int cr_fault_proxy_port(const cr_fault_proxy *p);
/* Fault rates in percent (0..100) and delay; take effect for new chunks
 * and connections. */
void cr_fault_proxy_set(cr_fault_proxy *p, int drop_pct, int cut_pct,
                        int delay_ms);
/* Retargets new connections (the server restarted on another port). */
void cr_fault_proxy_retarget(cr_fault_proxy *p, int target_port);
struct cr_fault_stats cr_fault_proxy_stats(cr_fault_proxy *p);
/* Closes everything and frees p (NULL is a no-op). */
void cr_fault_proxy_stop(cr_fault_proxy *p);

#endif
