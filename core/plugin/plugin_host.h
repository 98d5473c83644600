/* plugin_host.h: finds, loads, validates and holds provider plugins.
 *
 * The host scans plugin directories, dlopen()s every .so with
 * RTLD_NOW | RTLD_LOCAL, calls its entry function with the host table and
 * checks the returned descriptor (magic, ABI major/minor, struct size,
 * required callbacks, schemas, unique name, file permissions) before anything
 * else in the plugin is called. A refused plugin is dlclose()d and reported
 * with one line (path, reason); it never stops the others from loading.
 *
 * Hosts and plugins are reference-counted, so a daemon can swap in a new
 * set of plugins (plugin_scan.h) while executions still use the old one: a
 * plugin carried into the new set is shared, and an old plugin is
 * dlclose()d when the last host holding it is freed. A plugin is loaded
 * through the file descriptor it was checked on (/proc/self/fd/N), so the
 * file checked is the file loaded, and a new file renamed over the path of
 * a loaded one is a new load, not the old object again.
 */
#ifndef CR_PLUGIN_HOST_H
#define CR_PLUGIN_HOST_H

#include <connrun/plugin.h>
#include <stddef.h>
#include <stdint.h>

#include "util/jsonschema.h"

typedef struct cr_plugin_host cr_plugin_host;
typedef struct cr_plugin cr_plugin;

/* Called once per refused plugin file. path and reason are borrowed (valid
 * during the call). reason is one line without the path, e.g.
 * "wrong magic 0x12345678 (expected 0x636e7231): not a connrun plugin or a
 * corrupt build". */
typedef void (*cr_plugin_refused_cb)(void *ud, const char *path,
                                     const char *reason);

/* Creates an empty host. api is the host table handed to plugins (borrowed;
 * must outlive the host); NULL uses cr_host_api_default(). Returns 0 or
 * CR_ENOMEM. Free with cr_plugin_host_free. */
int cr_plugin_host_new(const struct cr_host_api *api, cr_plugin_host **out);

/* Drops a reference to h. The last one frees the host and its reference
 * to each plugin (a plugin no other host holds is dlclose()d): every
 * cr_plugin pointer obtained from it becomes invalid. NULL is a no-op.
 * Thread-safe against other references to the same host. */
void cr_plugin_host_free(cr_plugin_host *h);

/* Takes a reference to h (freed with cr_plugin_host_free). A host is not
 * changed once shared: only the thread that created it loads into it
 * before handing it out. Returns h; NULL is a no-op. */
cr_plugin_host *cr_plugin_host_retain(cr_plugin_host *h);

/* What identifies a version of a plugin file: device, inode, size and
 * modification time. A file renamed into place or rewritten differs. */
struct cr_plugin_file_id {
  uint64_t dev, ino;
  int64_t size, mtime_ns;
};

/* The identity of the regular file at path (symlinks followed) into *out.
 * Returns 0, CR_ENOENT / CR_EPERM / CR_EIO, or CR_EPLUGIN when it is not a
 * regular file. path is borrowed. */
int cr_plugin_file_id_get(const char *path, struct cr_plugin_file_id *out);

/* Non-zero when a and b (borrowed) are the same version of a file. */
int cr_plugin_file_id_eq(const struct cr_plugin_file_id *a,
                         const struct cr_plugin_file_id *b);

/* id as text, "dev:ino:size:mtime_ns", into buf (len bytes, >= 96 is
 * always enough). Returns buf. */
char *cr_plugin_file_id_format(const struct cr_plugin_file_id *id, char *buf,
                               size_t len);

/* The identity of the file p was loaded from (borrowed from p). */
const struct cr_plugin_file_id *cr_plugin_file(const cr_plugin *p);

/* When p was loaded (ms since the epoch). */
int64_t cr_plugin_loaded_at_ms(const cr_plugin *p);

/* Loads every regular file ending in ".so" in dir (not recursive), in name
 * order. Refused files are reported through cb (may be NULL). Returns 0 when
 * the directory was scanned (even if some plugins were refused), CR_ENOENT /
 * CR_EPERM / CR_EIO when the directory itself cannot be read (also reported
 * through cb with path = dir), CR_ENOMEM. dir is borrowed. */
int cr_plugin_host_load_dir(cr_plugin_host *h, const char *dir,
                            cr_plugin_refused_cb cb, void *ud);

/* Loads one plugin file. Returns 0, or CR_EPLUGIN / CR_EABI / CR_EEXIST /
 * CR_EPERM / CR_ENOENT with the reason written to errbuf (errlen bytes,
 * caller-owned). path is copied. */
int cr_plugin_host_load_file(cr_plugin_host *h, const char *path, char *errbuf,
                             size_t errlen);

/* Number of loaded plugins, and the i-th in load order (borrowed; NULL when
 * out of range). */
size_t cr_plugin_host_count(const cr_plugin_host *h);
const cr_plugin *cr_plugin_host_at(const cr_plugin_host *h, size_t i);

/* The files refused when this host was loaded (by cr_plugin_host_load_dir
 * or a rescan), and the i-th one's path and one-line reason (borrowed from
 * h; both NULL when i is out of range). */
size_t cr_plugin_host_refused_count(const cr_plugin_host *h);
void cr_plugin_host_refused_at(const cr_plugin_host *h, size_t i,
                               const char **path, const char **reason);

/* The plugin whose provider name is name, or NULL. Borrowed; valid until
 * cr_plugin_host_free. */
const cr_plugin *cr_plugin_host_find(const cr_plugin_host *h, const char *name);

/* The plugin's descriptor (owned by the plugin; valid while loaded). Fields
 * beyond the plugin's struct_size read as NULL/0 because the host copies the
 * descriptor into a full-size, zero-filled struct. */
const struct cr_plugin_descriptor *cr_plugin_desc(const cr_plugin *p);

/* The .so path (borrowed). */
const char *cr_plugin_path(const cr_plugin *p);

/* The compiled credentials / config schemas, NULL when the plugin declares
 * none ("any object"). Borrowed; owned by the host. */
const cr_schema *cr_plugin_credentials_schema(const cr_plugin *p);
const cr_schema *cr_plugin_config_schema(const cr_plugin *p);
/* The compiled settings schema (ABI minor 1), or NULL when the plugin takes
 * no settings (borrowed). */
const cr_schema *cr_plugin_settings_schema(const cr_plugin *p);

/* Non-zero when the plugin accepts authorization method m. */
int cr_plugin_accepts_method(const cr_plugin *p, const char *m);

/* Writes "health_check,read" style text for the capability bits of p into buf
 * (len bytes). Returns buf. */
char *cr_plugin_caps_string(const cr_plugin *p, char *buf, size_t len);

#endif
