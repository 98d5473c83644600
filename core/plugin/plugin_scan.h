/* plugin_scan.h: rescanning plugin directories into a new set of plugins,
 * and what changed.
 *
 * A rescan builds a new host from the directories, in the order of today's
 * loader (directories in order, files by name; the first file giving a
 * provider name wins). A file whose identity (cr_plugin_file_id) has not
 * changed since the previous set is carried over without being opened
 * again; a refused file that has not changed is not retried (except a
 * duplicate, whose winner may have gone). A changed file is loaded with
 * every check of cr_plugin_host_load_file. When a changed file is refused,
 * or a file is still being written, the version loaded from that path
 * before stays in the new set: a bad upgrade leaves the old version
 * serving. The old set is not touched: what holds it keeps using it.
 */
#ifndef CR_PLUGIN_SCAN_H
#define CR_PLUGIN_SCAN_H

#include <stddef.h>

#include "plugin/plugin_host.h"

enum cr_plugin_change_kind {
  CR_PLUGIN_CREATED, /* a provider that was not loaded is */
  CR_PLUGIN_UPDATED, /* a provider is loaded from a new file version */
  CR_PLUGIN_DELETED, /* a provider is no longer loaded */
  CR_PLUGIN_FAILED   /* a new or changed file was refused */
};

/* One change. Strings owned by the change list. */
struct cr_plugin_change {
  enum cr_plugin_change_kind kind;
  char *name; /* provider name; for FAILED the provider the file would
                 have replaced, else the file's base name */
  char *path; /* the file (the old one for DELETED) */
  char *version, *old_version;   /* new / previous version, NULL when none */
  unsigned abi_major, abi_minor; /* of the version now loaded (0 if none) */
  char *reason;                  /* FAILED: the one-line refusal */
};

struct cr_plugin_scan_opts {
  const char *const *dirs; /* borrowed */
  size_t n_dirs;
  /* Non-zero when path is still being written: it is not opened, and the
   * version loaded from it before (if any) stays. NULL: none is. */
  int (*busy)(void *ud, const char *path);
  /* Called for a directory that cannot be read (path = the directory). */
  cr_plugin_refused_cb dir_error;
  void *ud; /* passed to busy and dir_error */
};

/* Builds the new set *out (a new host with the host table of old; free
 * with cr_plugin_host_free) from o's directories against old (borrowed;
 * not changed; may be an empty host), and the changes from old to *out in
 * *changes / *n_changes (freed with cr_plugin_changes_free): CREATED and
 * UPDATED in the new set's order, then DELETED, then FAILED. Returns 0 or
 * CR_EINVAL / CR_ENOMEM (nothing is returned then). Runs on any thread: it
 * only reads old. */
int cr_plugin_host_rescan(const cr_plugin_host *old,
                          const struct cr_plugin_scan_opts *o,
                          cr_plugin_host **out,
                          struct cr_plugin_change **changes, size_t *n_changes);

/* Frees a change list (NULL is a no-op). */
void cr_plugin_changes_free(struct cr_plugin_change *c, size_t n);

/* "created", "updated", "deleted" or "failed": the event verb of k. */
const char *cr_plugin_change_verb(enum cr_plugin_change_kind k);

#endif
