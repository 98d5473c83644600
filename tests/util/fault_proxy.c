/* fault_proxy.c: the fault-injecting loopback TCP proxy (see
 * fault_proxy.h). */
#define _GNU_SOURCE
#include "fault_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 512

struct conn {
  cr_fault_proxy *p;
  int client, server;
  pthread_t t;
  int used;
  atomic_int done; /* the copying thread ended: join and reuse */
};

struct cr_fault_proxy {
  int lfd, port;
  atomic_int target, drop_pct, cut_pct, delay_ms, quit;
  pthread_t accept_t;
  pthread_mutex_t mu; /* rng, conns, stats */
  unsigned rng;
  struct conn conns[MAX_CONNS];
  struct cr_fault_stats st;
};

static int roll(cr_fault_proxy *p, int pct) {
  if (pct <= 0)
    return 0;
  pthread_mutex_lock(&p->mu);
  p->rng = p->rng * 1103515245u + 12345u;
  int r = (int)((p->rng >> 16) % 100u);
  pthread_mutex_unlock(&p->mu);
  return r < pct;
}

static void count(cr_fault_proxy *p, long *field, long n) {
  pthread_mutex_lock(&p->mu);
  *field += n;
  pthread_mutex_unlock(&p->mu);
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Copies what fd from has to fd to; -1 when a side closed. A response
 * (server to client) may be cut. */
static int pump(struct conn *c, int from, int to, int down) {
  char buf[16384];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0)
    return -1;
  cr_fault_proxy *p = c->p;
  int d = atomic_load(&p->delay_ms);
  if (d > 0)
    usleep((useconds_t)d * 1000);
  if (down && roll(p, atomic_load(&p->cut_pct))) {
    count(p, &p->st.cut, 1);
    return -1;
  }
  count(p, down ? &p->st.bytes_down : &p->st.bytes_up, n);
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w <= 0)
      return -1;
    off += w;
  }
  return 0;
}

static void *conn_main(void *arg) {
  struct conn *c = arg;
  cr_fault_proxy *p = c->p;
  while (!atomic_load(&p->quit)) {
    struct pollfd fds[2] = {{c->client, POLLIN, 0}, {c->server, POLLIN, 0}};
    int r = poll(fds, 2, 200);
    if (r < 0 && errno != EINTR)
      break;
    if (r <= 0)
      continue;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
        pump(c, c->client, c->server, 0) != 0)
      break;
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
        pump(c, c->server, c->client, 1) != 0)
      break;
  }
  shutdown(c->client, SHUT_RDWR);
  shutdown(c->server, SHUT_RDWR);
  atomic_store(&c->done, 1);
  return NULL;
}

/* Joins a finished connection's thread and closes its sockets. */
static void reap(struct conn *c) {
  pthread_join(c->t, NULL);
  close(c->client);
  close(c->server);
  c->used = 0;
}

/* A free slot (reaping finished connections), or NULL. */
static struct conn *slot(cr_fault_proxy *p) {
  struct conn *free_one = NULL;
  for (int i = 0; i < MAX_CONNS; i++) {
    struct conn *c = &p->conns[i];
    if (c->used && atomic_load(&c->done))
      reap(c);
    if (!c->used && free_one == NULL)
      free_one = c;
  }
  return free_one;
}

static void *accept_main(void *arg) {
  cr_fault_proxy *p = arg;
  while (!atomic_load(&p->quit)) {
    struct pollfd pf = {p->lfd, POLLIN, 0};
    if (poll(&pf, 1, 200) <= 0)
      continue;
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
      continue;
    count(p, &p->st.connections, 1);
    int sfd =
        roll(p, atomic_load(&p->drop_pct)) ? -1 : dial(atomic_load(&p->target));
    pthread_mutex_lock(&p->mu);
    struct conn *c = sfd >= 0 ? slot(p) : NULL;
    if (c != NULL) {
      c->p = p;
      c->client = cfd;
      c->server = sfd;
      c->used = 1;
      atomic_store(&c->done, 0);
      if (pthread_create(&c->t, NULL, conn_main, c) != 0)
        c->used = 0;
    }
    int ok = c != NULL && c->used;
    if (!ok)
      p->st.dropped++;
    pthread_mutex_unlock(&p->mu);
    if (!ok) {
      close(cfd);
      if (sfd >= 0)
        close(sfd);
    }
  }
  return NULL;
}

int cr_fault_proxy_start(int target_port, unsigned seed, cr_fault_proxy **out) {
  cr_fault_proxy *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -1;
  pthread_mutex_init(&p->mu, NULL);
  p->rng = seed;
  atomic_store(&p->target, target_port);
  p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(p->lfd, 128) != 0 ||
      getsockname(p->lfd, (struct sockaddr *)&a, &len) != 0 ||
      pthread_create(&p->accept_t, NULL, accept_main, p) != 0) {
    if (p->lfd >= 0)
      close(p->lfd);
    free(p);
    return -1;
  }
  p->port = ntohs(a.sin_port);
  *out = p;
  return 0;
}

int cr_fault_proxy_port(const cr_fault_proxy *p) { return p->port; }

void cr_fault_proxy_set(cr_fault_proxy *p, int drop_pct, int cut_pct,
                        int delay_ms) {
  atomic_store(&p->drop_pct, drop_pct);
  atomic_store(&p->cut_pct, cut_pct);
  atomic_store(&p->delay_ms, delay_ms);
}

void cr_fault_proxy_retarget(cr_fault_proxy *p, int target_port) {
  atomic_store(&p->target, target_port);
}

struct cr_fault_stats cr_fault_proxy_stats(cr_fault_proxy *p) {
  pthread_mutex_lock(&p->mu);
  struct cr_fault_stats s = p->st;
  pthread_mutex_unlock(&p->mu);
  return s;
}

void cr_fault_proxy_stop(cr_fault_proxy *p) {
  if (p == NULL)
    return;
  atomic_store(&p->quit, 1);
  pthread_join(p->accept_t, NULL);
  close(p->lfd);
  for (int i = 0; i < MAX_CONNS; i++)
    if (p->conns[i].used)
      reap(&p->conns[i]);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
