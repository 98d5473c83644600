/* plugin_host_internal.h: the descriptor import step of the plugin host,
 * exposed for unit tests only (not part of the public API).
 *
 * A plugin's descriptor may be shorter than the host's struct (a plugin built
 * for an older minor) or longer (never read past the host's sizeof). The
 * import checks the header and copies only the bytes both sides know into a
 * zero-filled host copy, so later fields read as NULL/0. */
#ifndef CR_PLUGIN_HOST_INTERNAL_H
#define CR_PLUGIN_HOST_INTERNAL_H

#include <connrun/plugin.h>
#include <stddef.h>

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

#endif
