/* ctl_cluster.c: the cluster view (ctl_cluster.h). */
#include "control/ctl_cluster.h"
#include "control/ctl_int.h"
#include "store/store_cluster.h"
#include "util/clock.h"
#include "util/error.h"

#include <string.h>

/* The duties holder holds now, as an array of names. */
static json_t *held_by(const struct cr_duty_rec *d, size_t n,
                       const char *holder, int64_t now) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (strcmp(d[i].holder, holder) == 0 && d[i].expires_at > now)
      json_array_append_new(arr, json_string(d[i].name));
  return arr;
}

static json_t *instance_json(const struct cr_instance_rec *in,
                             const struct cr_duty_rec *d, size_t nd,
                             int64_t now) {
  json_t *info = json_loads(in->info_json, 0, NULL);
  json_t *j = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?, s:o, s:o, s:b, s:o}",
                        "id", in->id, "host", json_object_get(info, "host"),
                        "pid", json_object_get(info, "pid"), "version",
                        json_object_get(info, "version"), "api_port",
                        json_object_get(info, "api_port"), "started_at",
                        cr_ctl_jtime(in->started_at), "last_seen_at",
                        cr_ctl_jtime(in->last_seen_at), "online",
                        now - in->last_seen_at < CR_CLUSTER_ONLINE_MS, "duties",
                        held_by(d, nd, in->id, now));
  json_decref(info);
  return j;
}

int cr_ctl_cluster_view(const struct cr_ctl *c, json_t **out) {
  struct cr_instance_rec *in = NULL;
  struct cr_duty_rec *d = NULL;
  size_t ni = 0, nd = 0;
  int64_t now = cr__now_ms();
  int rc = cr_store_instance_list(c->store, &in, &ni);
  if (rc == 0)
    rc = cr_store_duty_list(c->store, &d, &nd);
  json_t *insts = json_array(), *duties = json_array();
  for (size_t i = 0; rc == 0 && i < ni; i++)
    json_array_append_new(insts, instance_json(&in[i], d, nd, now));
  for (size_t i = 0; rc == 0 && i < nd; i++)
    json_array_append_new(
        duties,
        json_pack("{s:s, s:s, s:o, s:o, s:I, s:b}", "name", d[i].name, "holder",
                  d[i].holder, "since", cr_ctl_jtime(d[i].since), "expires_at",
                  cr_ctl_jtime(d[i].expires_at), "epoch",
                  (json_int_t)d[i].epoch, "held", d[i].expires_at > now));
  cr_instance_rec_free_list(in, ni);
  cr_duty_rec_free_list(d, nd);
  if (rc != 0) {
    json_decref(insts);
    json_decref(duties);
    return rc;
  }
  *out = json_pack("{s:o, s:o}", "instances", insts, "duties", duties);
  return *out ? 0 : CR_ENOMEM;
}
