/* remote_identity.h: a runner host's identity on its server, kept in
 * DATA_DIR/runner.json (mode 0600): {"server", "runner_id", "token"}.
 *
 * Written once at registration (atomically: a temporary file renamed over
 * the old one) and read at every start, so a restarted runner keeps its id.
 * The token is a secret: it is wiped from memory on clear and never put in
 * an error message. */
#ifndef CR_REMOTE_IDENTITY_H
#define CR_REMOTE_IDENTITY_H

#include <stddef.h>

struct cr_remote_identity {
  char *server;    /* owned */
  char *runner_id; /* owned */
  char *token;     /* owned, secret */
};

/* Reads data_dir/runner.json (data_dir borrowed) into *out (caller owned;
 * release with cr_remote_identity_clear). Errors: CR_ENOENT (no file),
 * CR_EPARSE (not an identity: a message in err, errlen bytes), CR_EPERM
 * (the file is readable by others than its owner: refused), CR_EIO,
 * CR_ENOMEM. */
int cr_remote_identity_load(const char *data_dir,
                            struct cr_remote_identity *out, char *err,
                            size_t errlen);

/* Writes id (borrowed) to data_dir/runner.json with mode 0600, replacing
 * any previous one atomically. Errors: CR_EINVAL, CR_EIO (message in err),
 * CR_ENOMEM. */
int cr_remote_identity_save(const char *data_dir,
                            const struct cr_remote_identity *id, char *err,
                            size_t errlen);

/* Frees what id owns, wiping the token; id itself is the caller's. */
void cr_remote_identity_clear(struct cr_remote_identity *id);

#endif
