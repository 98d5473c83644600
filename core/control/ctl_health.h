/* ctl_health.h: one authorization health check from its inputs to its
 * stored record, shared by the daemon's scheduled checks (on its thread
 * pool) and "check now" (control.h, on an API thread): the inputs (rotated
 * or configured credentials, the config of a work that uses the
 * authorization), the run, and the record (health history, the `auth`
 * event, activity metrics) in one transaction. */
#ifndef CR_CTL_HEALTH_H
#define CR_CTL_HEALTH_H

#include <stdatomic.h>

#include "config/config.h"
#include "plugin/health.h"
#include "store/store.h"

/* What a check of one authorization is given. Strings are malloc'd (the
 * credentials wiped on clear). */
struct cr_ctl_health_input {
  char *credentials;   /* JSON text with secrets */
  char *config;        /* config of the first enabled work using the
                          authorization, or NULL */
  const char *work_id; /* that work's id (borrowed from the config) */
  char *settings;      /* the authorization's settings, JSON text */
  char *rotated;       /* credentials the plugin rotated during the check
                          (recorded with it), or NULL */
};

/* Fills in (caller-owned) for authorization a (borrowed) of cfg: the
 * credentials a plugin rotated while the definition is unchanged (from s),
 * else the configured ones. Returns 0 or CR_ENOMEM. */
int cr_ctl_health_prepare(cr_store *s, const cr_config *cfg,
                          const struct cr_config_auth *a,
                          struct cr_ctl_health_input *in);

/* Wipes and frees what in holds. */
void cr_ctl_health_input_clear(struct cr_ctl_health_input *in);

/* Runs the check of a with plugin p (borrowed) and in (borrowed; credentials
 * the plugin rotates go to in->rotated), keeping the secrets of cfg's
 * redactor out of the reason. Blocks. Returns 0 when *out was filled. */
int cr_ctl_health_exec(const cr_config *cfg, const cr_plugin *p,
                       const struct cr_config_auth *a,
                       struct cr_ctl_health_input *in,
                       const struct cr_health_options *opts,
                       struct cr_health_outcome *out);

/* Records outcome o (borrowed) of authorization a: the health history row,
 * an `auth` event (verb healthy / unhealthy / unknown; data: status,
 * reason, provider, previous status, requests, duration_ms) by actor, the
 * requests in the activity metrics, and credentials the plugin rotated
 * (in->rotated, with an `auth updated` event that never carries them), in
 * one transaction. in may be NULL. */
int cr_ctl_health_record(cr_store *s, const struct cr_config_auth *a,
                         const struct cr_health_outcome *o, const char *actor,
                         const struct cr_ctl_health_input *in);

/* The product name of a plugin health status ("Healthy"...). */
const char *cr_ctl_health_name(int status);

#endif
