/* plugin_host_internal.h: the plugin host's internals shared with the
 * rescan (plugin_scan.c) and the unit tests, not part of the public API:
 * the descriptor import step, carrying a loaded plugin into another host,
 * and the files a scan refused.
 *
 * A plugin's descriptor may be shorter than the host's struct (a plugin built
 * for an older minor) or longer (never read past the host's sizeof). The
 * import checks the header and copies only the bytes both sides know into a
 * zero-filled host copy, so later fields read as NULL/0. */
#ifndef CR_PLUGIN_HOST_INTERNAL_H
#define CR_PLUGIN_HOST_INTERNAL_H

#include <connrun/plugin.h>
#include <stddef.h>

#include "plugin/plugin_host.h"

/* Size of the ABI 1.0 descriptor: everything up to and including `write`. */
#define CR__PLUGIN_DESC_V1_0_SIZE                                              \
  (offsetof(struct cr_plugin_descriptor, write) + sizeof(cr_plugin_write_fn))

/* Checks magic, ABI major (equal), ABI minor (not newer than the host's) and
 * struct_size (at least min_size) of src, then zero-fills *dst and copies
 * min(src->struct_size, sizeof *dst) bytes of src into it. Returns 0,
 * CR_EPLUGIN (wrong magic) or CR_EABI, with the refusal reason written to
 * errbuf (errlen bytes, caller-owned; may be NULL). src is borrowed (only
 * read); dst is caller-owned. */
int cr__plugin_desc_import(const struct cr_plugin_descriptor *src,
                           size_t min_size, struct cr_plugin_descriptor *dst,
                           char *errbuf, size_t errlen);

/* A file a scan refused: its path, identity, code and one-line reason
 * (all owned by the host that holds it). */
struct cr__plugin_refusal {
  char *path;
  struct cr_plugin_file_id id;
  int rc;
  char *reason;
};

/* Adds p (a plugin of another host; borrowed) to h, taking a reference:
 * both hosts hold it, it is unloaded when the last lets go. Returns 0 or
 * CR_ENOMEM. */
int cr__plugin_host_adopt(cr_plugin_host *h, const cr_plugin *p);

/* Records a refused file in h (path, id and reason copied). Returns 0 or
 * CR_ENOMEM. */
int cr__plugin_host_add_refusal(cr_plugin_host *h, const char *path,
                                const struct cr_plugin_file_id *id, int rc,
                                const char *reason);

/* The refused files of h (*n of them; borrowed from h). */
const struct cr__plugin_refusal *
cr__plugin_host_refusals(const cr_plugin_host *h, size_t *n);

/* The sorted names of the ".so" files of dir (*names, *n; freed with
 * cr__plugin_names_free). Returns 0, or CR_ENOENT / CR_EPERM / CR_EIO /
 * CR_ENOMEM with a one-line reason in reason (len bytes) when the
 * directory cannot be read. dir is borrowed. */
int cr__plugin_dir_list(const char *dir, char ***names, size_t *n, char *reason,
                        size_t len);
void cr__plugin_names_free(char **names, size_t n);

/* The host table h hands to plugins (borrowed). */
const struct cr_host_api *cr__plugin_host_api(const cr_plugin_host *h);

#endif
