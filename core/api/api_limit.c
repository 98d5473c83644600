/* api_limit.c: the REST API's rate limiter (see api_int.h): a token bucket
 * per API token, and per client address for requests without a valid
 * token, sized by host.api.rate_limit (read at each request, so a reload
 * changes it).
 *
 * A bucket is kept as the time it will be full again (the "theoretical
 * arrival time" of the generic cell rate algorithm, which is a token bucket
 * written as one number): each request adds 1/rate seconds to it, and a
 * request that would push it more than burst/rate seconds past now is
 * refused with the wait until it fits. A bucket whose time has passed is
 * full, the same as no bucket, so it can be dropped at no cost.
 *
 * The buckets live in a fixed table allocated once (SHARDS x SLOTS), split
 * in shards of their own lock so the server's threads rarely wait on each
 * other; a request allocates nothing. A new key takes a free or full slot
 * of its shard, else the one nearest to full (an address never evicts a
 * token's bucket while an address bucket is there to take). Under a flood
 * of more addresses than slots an evicted address starts again with a full
 * burst: the table bounds memory, not the flood (max_connections_per_ip
 * does that). */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util/alloc.h"
#include "util/error.h"

#define SHARDS 16
#define SLOTS 64    /* per shard: 1,024 buckets in all */
#define KEY_MAX 130 /* a kind byte and a token name (ids are <= 128) */

enum { BY_TOKEN = 0, BY_ADDRESS = 1 };

struct slot {
  int64_t full_at_ns; /* the bucket is full from then on */
  uint64_t hash;
  unsigned char len, used;
  char key[KEY_MAX];
};

struct shard {
  uv_mutex_t mu;
  struct slot slots[SLOTS];
};

struct cr__api_limit {
  struct shard shards[SHARDS];
  atomic_uint_fast64_t refused[2]; /* by token, by address */
};

int cr__api_limit_new(struct cr__api_limit **out) {
  struct cr__api_limit *l = cr__calloc(1, sizeof *l);
  if (l == NULL)
    return CR_ENOMEM;
  for (size_t i = 0; i < SHARDS; i++)
    if (uv_mutex_init(&l->shards[i].mu) != 0) {
      while (i-- > 0)
        uv_mutex_destroy(&l->shards[i].mu);
      cr__free(l);
      return CR_ENOMEM;
    }
  *out = l;
  return 0;
}

void cr__api_limit_free(struct cr__api_limit *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < SHARDS; i++)
    uv_mutex_destroy(&l->shards[i].mu);
  cr__free(l);
}

void cr__api_limit_refused(const struct cr__api_limit *l, uint64_t *by_token,
                           uint64_t *by_address) {
  *by_token = l ? atomic_load(&l->refused[BY_TOKEN]) : 0;
  *by_address = l ? atomic_load(&l->refused[BY_ADDRESS]) : 0;
}

static uint64_t fnv1a(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

/* The slot a new key takes: a free or full one, else the nearest to full
 * (for an address, among the address slots when there is one). */
static struct slot *victim(struct shard *sh, int by, int64_t now) {
  struct slot *best = NULL;
  for (size_t i = 0; i < SLOTS; i++) {
    struct slot *s = &sh->slots[i];
    if (!s->used || s->full_at_ns <= now)
      return s;
    if (by == BY_ADDRESS && s->key[0] == 't')
      continue;
    if (best == NULL || s->full_at_ns < best->full_at_ns)
      best = s;
  }
  return best ? best : &sh->slots[0];
}

/* Takes one request from key's bucket: 0, or the wait in ns before one
 * fits. */
static int64_t take(struct cr__api_limit *l, int by, const char *key,
                    size_t len, int rate, int burst, int64_t now) {
  uint64_t h = fnv1a(key, len);
  struct shard *sh = &l->shards[(h >> 32) % SHARDS];
  int64_t step = INT64_C(1000000000) / rate, wait = 0;
  uv_mutex_lock(&sh->mu);
  struct slot *s = NULL;
  for (size_t i = 0; i < SLOTS && s == NULL; i++) {
    struct slot *c = &sh->slots[i];
    if (c->used && c->hash == h && c->len == len && !memcmp(c->key, key, len))
      s = c;
  }
  if (s == NULL) {
    s = victim(sh, by, now);
    s->used = 1;
    s->hash = h;
    s->len = (unsigned char)len;
    memcpy(s->key, key, len);
    s->full_at_ns = now;
  }
  int64_t next = (s->full_at_ns > now ? s->full_at_ns : now) + step;
  if (next - now > step * burst)
    wait = next - now - step * burst;
  else
    s->full_at_ns = next;
  uv_mutex_unlock(&sh->mu);
  return wait;
}

/* The bucket key of a request: 't' + the token's name, or 'a' + the
 * client's address bytes. */
static size_t key_of(struct cr__api_req *r, const char *token, char *key) {
  if (token != NULL) {
    size_t n = strlen(token);
    if (n > KEY_MAX - 1)
      n = KEY_MAX - 1;
    key[0] = 't';
    memcpy(key + 1, token, n);
    return n + 1;
  }
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  key[0] = 'a';
  if (sa != NULL && sa->sa_family == AF_INET) {
    memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 5;
  }
  if (sa != NULL && sa->sa_family == AF_INET6) {
    memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 17;
  }
  return 1; /* unknown: one bucket for all of them */
}

int cr__api_rate_limited(struct cr__api_req *r, const char *token,
                         struct cr__api_res *res) {
  const struct cr_config_api *c = &r->cfg->host.api;
  const char *route = cr__api_routes[r->route].pattern;
  /* Liveness and readiness probes are never refused: a refused probe
   * would get a healthy server restarted. */
  if (c->rate_per_s <= 0 || r->api->limit == NULL ||
      !strcmp(route, "/healthz") || !strcmp(route, "/readyz"))
    return 0;
  char key[KEY_MAX];
  size_t len = key_of(r, token, key);
  int by = token ? BY_TOKEN : BY_ADDRESS;
  int64_t wait = take(r->api->limit, by, key, len, c->rate_per_s, c->rate_burst,
                      cr__api_mono_ns());
  if (wait == 0)
    return 0;
  atomic_fetch_add(&r->api->limit->refused[by], 1);
  res->retry_after = (int)((wait + 999999999) / 1000000000);
  char who[160];
  if (token != NULL)
    snprintf(who, sizeof who, "token '%s'", token);
  else
    snprintf(who, sizeof who, "this client address");
  cr__api_error(res, 429, "rate_limited", NULL,
                "too many requests for %s (host.api.rate_limit: %d per "
                "second, burst %d): retry in %d s",
                who, c->rate_per_s, c->rate_burst, res->retry_after);
  return 1;
}
