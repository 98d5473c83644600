/* remote_claim.h: one claim a runner host received from its server
 * (POST /v1/runners/{id}/claims, docs/design.md "Claims are long polls"),
 * and the configuration it runs with.
 *
 * A claim names the execution (execution_id, attempt, work_id, epoch), its
 * lease (lease_ms, lease_expires_at), the work's last committed state (a
 * JSON text or null) and `config`: {"authorizations":[...],"works":[...]}
 * in the configuration's own keys with the credentials in place. The
 * configuration is loaded in memory only, on top of a small base file of
 * the host's (its host.data_dir), with cr_config_load_ex: credentials are
 * never written anywhere. */
#ifndef CR_REMOTE_CLAIM_H
#define CR_REMOTE_CLAIM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct cr_remote_claim {
  int64_t execution_id, epoch;
  int attempt;
  char *work_id;            /* owned */
  int64_t lease_ms;         /* the lease the server granted */
  int64_t lease_expires_at; /* server clock, ms */
  int64_t received_ms;      /* local clock when the claim arrived */
  char *state;              /* owned JSON text, NULL when none */
  json_t *config;           /* owned reference (holds credentials) */
};

/* Fills *out (caller owned; release with cr_remote_claim_clear) from one
 * element j (borrowed) of the answer's "claims". received_ms is the local
 * time the answer arrived. Errors: CR_EINVAL (a field missing or of the
 * wrong type; its name in err, errlen bytes), CR_ENOMEM. */
int cr_remote_claim_parse(const json_t *j, int64_t received_ms,
                          struct cr_remote_claim *out, char *err,
                          size_t errlen);

/* Frees what c owns (the configuration's secrets are wiped by its owner,
 * jansson, only as far as json_decref does: keep claims short-lived). c
 * itself is borrowed; NULL is a no-op. */
void cr_remote_claim_clear(struct cr_remote_claim *c);

/* Loads the claim's configuration: base_yaml (borrowed path: the host's
 * keys) with c->config as the API objects (cr_config_load_ex). *out is
 * transferred (cr_config_free). On CR_ECONFIG the first error diagnostic
 * is written to err (errlen bytes; diagnostics never hold secrets) and
 * *out is NULL. Other errors as cr_config_load_ex. */
int cr_remote_claim_config(const struct cr_remote_claim *c,
                           const char *base_yaml, cr_config **out, char *err,
                           size_t errlen);

/* The credentials the claim's work runs with: its authorization's
 * credentials in cfg (borrowed) as a compact JSON text, "{}" when the work
 * has no authorization. *out is cr__malloc'ed and secret: free it with
 * cr__secret_wipe_free. Errors: CR_ENOENT (the work is not in cfg),
 * CR_ENOMEM. */
int cr_remote_claim_credentials(const struct cr_remote_claim *c,
                                const cr_config *cfg, char **out);

#endif
