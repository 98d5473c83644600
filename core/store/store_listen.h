/* store_listen.h: news from other processes sharing the store. On
 * PostgreSQL, a committed transaction that made an execution claimable or
 * appended events sends a notification (NOTIFY connrun, 'claims' or
 * 'events'); a listener is a thread with a connection of its own that
 * LISTENs and calls back on each, so the instances' long-polling runners
 * and delivery engines wake at once instead of polling. SQLite has no such
 * channel (its instances poll): cr_store_listen gives CR_ENOTSUP.
 *
 * The listener reconnects by itself (1 s apart, then up to 10 s) when the
 * connection drops, and calls back with CR_STORE_NEWS_ALL after each
 * reconnection, since notifications sent meanwhile were lost. */
#ifndef CR_STORE_LISTEN_H
#define CR_STORE_LISTEN_H

#include <stddef.h>

typedef struct cr_store_listener cr_store_listener;

enum cr_store_news {
  CR_STORE_NEWS_CLAIMS = 1, /* an execution may have become claimable */
  CR_STORE_NEWS_EVENTS = 2, /* events were committed */
  CR_STORE_NEWS_ALL = 3
};

/* Called on the listener's thread (keep it short: set a flag, kick). */
typedef void (*cr_store_news_fn)(void *ud, int news);

/* Starts listening on the store at where (a data directory or store URL,
 * as cr_store_open; borrowed). fn and ud are borrowed until
 * cr_store_listen_stop. Returns 0, CR_ENOTSUP (not PostgreSQL), CR_ESTORE
 * (cannot connect; errbuf, errlen bytes, says why, without the password),
 * CR_ENOMEM. */
int cr_store_listen(const char *where, cr_store_news_fn fn, void *ud,
                    cr_store_listener **out, char *errbuf, size_t errlen);

/* Stops the thread and frees l (NULL is a no-op). When this returns fn is
 * not running and will not be called again. */
void cr_store_listen_stop(cr_store_listener *l);

#endif
