/* ctl_cluster.h: the cluster view (GET /v1/cluster, `connrun cluster`):
 * the `connrun serve` instances sharing the store and the duties each
 * holds (store/store_cluster.h). */
#ifndef CR_CTL_CLUSTER_H
#define CR_CTL_CLUSTER_H

#include <jansson.h>

#include "control/control.h"

/* An instance is online while its last heartbeat is this recent. */
#define CR_CLUSTER_ONLINE_MS 10000

/* {"instances": [{id, host, pid, version, api_port, started_at,
 * last_seen_at, online, duties: [names held now]}], "duties": [{name,
 * holder, since, expires_at, epoch, held}]} into *out (new reference).
 * Errors: store errors, CR_ENOMEM. */
int cr_ctl_cluster_view(const struct cr_ctl *c, json_t **out);

#endif
