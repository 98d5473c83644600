/* remote_claim.c: parsing a claim of the server and loading the
 * configuration it carries (see remote_claim.h). */
#include "remote/remote_claim.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/error.h"

static int need_int(const json_t *j, const char *key, int64_t *v, char *err,
                    size_t errlen) {
  const json_t *x = json_object_get(j, key);
  if (!json_is_integer(x)) {
    snprintf(err, errlen, "claim: '%s' missing or not an integer", key);
    return CR_EINVAL;
  }
  *v = (int64_t)json_integer_value(x);
  return 0;
}

/* The state: a JSON text, null/absent, or (tolerated) a JSON value. */
static int take_state(const json_t *st, char **out) {
  *out = NULL;
  if (st == NULL || json_is_null(st))
    return 0;
  if (json_is_string(st))
    *out = cr__strdup(json_string_value(st));
  else {
    char *t = json_dumps(st, JSON_COMPACT | JSON_ENCODE_ANY);
    *out = t ? cr__strdup(t) : NULL;
    free(t);
  }
  return *out ? 0 : CR_ENOMEM;
}

int cr_remote_claim_parse(const json_t *j, int64_t received_ms,
                          struct cr_remote_claim *out, char *err,
                          size_t errlen) {
  if (j == NULL || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  int64_t attempt = 0;
  const char *wid = json_string_value(json_object_get(j, "work_id"));
  const json_t *cfg = json_object_get(j, "config");
  int rc = need_int(j, "execution_id", &out->execution_id, err, errlen);
  if (rc == 0)
    rc = need_int(j, "epoch", &out->epoch, err, errlen);
  if (rc == 0)
    rc = need_int(j, "attempt", &attempt, err, errlen);
  if (rc == 0)
    rc = need_int(j, "lease_ms", &out->lease_ms, err, errlen);
  if (rc == 0 && json_object_get(j, "lease_expires_at") != NULL)
    rc = need_int(j, "lease_expires_at", &out->lease_expires_at, err, errlen);
  if (rc == 0 && (wid == NULL || !json_is_object(cfg))) {
    snprintf(err, errlen, "claim: '%s' missing or of the wrong type",
             wid == NULL ? "work_id" : "config");
    rc = CR_EINVAL;
  }
  if (rc == 0 && (attempt < 1 || attempt > 1000000 || out->lease_ms <= 0)) {
    snprintf(err, errlen, "claim: attempt or lease_ms out of range");
    rc = CR_EINVAL;
  }
  if (rc == 0)
    rc = (out->work_id = cr__strdup(wid)) ? 0 : CR_ENOMEM;
  if (rc == 0)
    rc = take_state(json_object_get(j, "state"), &out->state);
  if (rc != 0) {
    cr_remote_claim_clear(out);
    return rc;
  }
  out->attempt = (int)attempt;
  out->received_ms = received_ms;
  out->config = json_incref((json_t *)cfg);
  return 0;
}

void cr_remote_claim_clear(struct cr_remote_claim *c) {
  if (c == NULL)
    return;
  cr__free(c->work_id);
  cr__free(c->state);
  json_decref(c->config);
  memset(c, 0, sizeof *c);
}

int cr_remote_claim_config(const struct cr_remote_claim *c,
                           const char *base_yaml, cr_config **out, char *err,
                           size_t errlen) {
  if (c == NULL || base_yaml == NULL || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  cr_diags d;
  cr_diags_init(&d);
  cr_config *cfg = NULL;
  int rc = cr_config_load_ex(base_yaml, c->config, &cfg, &d);
  if (rc == CR_ECONFIG) {
    const char *first = "invalid configuration";
    for (size_t i = 0; i < d.count; i++)
      if (d.items[i].severity == CR_DIAG_ERROR) {
        first = d.items[i].message;
        break;
      }
    snprintf(err, errlen, "%s", first);
    cr_config_free(cfg);
    cfg = NULL;
  } else if (rc != 0 && err != NULL && errlen > 0) {
    snprintf(err, errlen, "cannot load the configuration: %s", cr_strerror(rc));
  }
  cr_diags_free(&d);
  *out = cfg;
  return rc;
}

int cr_remote_claim_credentials(const struct cr_remote_claim *c,
                                const cr_config *cfg, char **out) {
  const struct cr_config_work *w =
      c && cfg ? cr_config_find_work(cfg, c->work_id) : NULL;
  if (w == NULL)
    return CR_ENOENT;
  char *t = cr_config_auth_credentials_text(w->auth);
  if (t == NULL)
    return CR_ENOMEM;
  *out = cr__strdup(t);
  cr__secret_wipe(t, strlen(t));
  free(t);
  return *out ? 0 : CR_ENOMEM;
}
