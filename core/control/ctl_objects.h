/* ctl_objects.h: authorizations, works and subscriptions created through the
 * REST API. They are stored (store.h "Objects created through the API") in
 * the configuration's own keys with their secrets sealed apart, and loaded
 * next to the configuration file as the file "api" (cr_config_load_ex), so
 * every rule of the loader and every part of the engine applies to them as
 * to objects written in YAML.
 *
 * A change is checked by loading the configuration with the changed API
 * objects (a config error is refused with its message, nothing written),
 * then written in one store transaction with its event: the object's row
 * and the store's record, the event's actor being the caller's token. The
 * daemon then reloads (the hook the API calls), which finds nothing more
 * to change.
 */
#ifndef CR_CTL_OBJECTS_H
#define CR_CTL_OBJECTS_H

#include <jansson.h>

#include "config/config.h"
#include "control/control.h"
#include "store/store.h"

/* The sealing key's path for cfg: host.secret_key_file, or
 * <data_dir>/secret.key, into buf (len bytes). */
void cr_ctl_key_path(const cr_config *cfg, char *buf, size_t len);

/* The API objects of s as a cr_config_load_ex root (a new reference in
 * *root), their secrets unsealed with the key at key_path (created on first
 * use). Errors (message in errbuf): CR_EIO / CR_EPERM / CR_EINVAL (key),
 * CR_EINVAL (a blob that does not open with this key), store errors. */
int cr_ctl_api_root(cr_store *s, const char *key_path, json_t **root,
                    char *errbuf, size_t errlen);

/* Loads the configuration at path with the API objects of s, checked
 * against plugins h (borrowed) with check_flags (cr_config_check_plugins_ex:
 * CR_CHECK_DEGRADE on a running daemon's reload, else 0). Returns as
 * cr_config_load (diags gets the problems). */
int cr_ctl_config_load(cr_store *s, const char *path, const cr_plugin_host *h,
                       int check_flags, cr_config **out, cr_diags *diags);

/* Kinds: "authorization", "work", "subscription". */

/* Creates an object of kind from def (borrowed: the configuration's keys,
 * secrets in place). A subscription without "id" gets a generated one.
 * *id_out (130 bytes) gets the id; *cfg_out (may be NULL) the configuration
 * with the new object (transferred: cr_config_free). Errors: CR_EEXIST (the id
 * is taken), CR_ECONFIG (def is not valid: msg says why), CR_EIO (key), store
 * errors. msg (caller-owned, msglen bytes) gets a one-line reason on failure.
 */
int cr_ctl_object_create(const struct cr_ctl *c, const char *kind,
                         const json_t *def, char *id_out, cr_config **cfg_out,
                         char *msg, size_t msglen);

/* Replaces keys of API object (kind, id) with those of changes (borrowed);
 * *cfg_out (may be NULL) as for create.
 * Errors: CR_ENOENT (no such API object), CR_ECONFIG (msg), store errors. */
int cr_ctl_object_update(const struct cr_ctl *c, const char *kind,
                         const char *id, const json_t *changes,
                         cr_config **cfg_out, char *msg, size_t msglen);

/* Deletes API object (kind, id). Errors: CR_ENOENT, CR_ECONFIG (something
 * still refers to it: msg names it), store errors. */
/* Deletes (kind, id) as a person asks it: CR_ENOENT (no such object),
 * CR_EPERM (declared in the configuration file: msg gets "FILE:LINE"),
 * CR_EBUSY (an authorization works still use: msg lists them), CR_ECONFIG
 * (something else still refers to it: msg says what), store errors. */
int cr_ctl_object_remove(const struct cr_ctl *c, const char *kind,
                         const char *id, char *msg, size_t msglen);

/* Deletes authorization id as DELETE /v1/authorizations/{id}?force=...
 * does. Without force: as cr_ctl_object_remove. With force, the works
 * still using it are disabled first, in the same transaction: each
 * API-created one gets enabled: false in its stored definition and a
 * `work disabled` event (data {reason, authorization}), then the
 * authorization is deleted (`auth deleted`), every event by c->actor; a
 * failure writes nothing. The works stay, disabled, naming the deleted
 * authorization (the loader warns) until they name one that exists.
 * Works declared in the configuration file cannot be changed through the
 * API: then nothing is written and CR_EPERM comes with that work's id in
 * blocker (130 bytes, caller-owned; "" when the authorization itself is
 * declared in the file) and its "FILE:LINE" in msg. Errors: as
 * cr_ctl_object_remove. */
int cr_ctl_auth_remove(const struct cr_ctl *c, const char *id, int force,
                       char *msg, size_t msglen, char *blocker);

/* 1 when (kind, id) of cfg is an object created through the API. */
int cr_ctl_is_api_object(const cr_config *cfg, const char *kind,
                         const char *id);
int cr_ctl_object_delete(const struct cr_ctl *c, const char *kind,
                         const char *id, char *msg, size_t msglen);

#endif
