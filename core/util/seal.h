/* seal.h: secrets at rest. AES-256-GCM (OpenSSL libcrypto) with a 32-byte
 * key kept in a file of its own (host.secret_key_file, default
 * <data_dir>/secret.key, created 0600 with random bytes on first use).
 *
 * A sealed blob is: 1 byte version (1), 12 bytes random nonce, the
 * ciphertext (as long as the plaintext), 16 bytes tag. The key's id (the
 * first 8 hex digits of SHA-256 of the key) is stored next to each blob so
 * a changed key file is reported as such, not as corrupt data.
 */
#ifndef CR_SEAL_H
#define CR_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define CR_SEAL_KEY_BYTES 32
#define CR_SEAL_OVERHEAD (1 + 12 + 16)

struct cr_seal_key {
  unsigned char key[CR_SEAL_KEY_BYTES];
  char id[9]; /* hex, NUL-terminated */
};

/* Reads the key at path (borrowed), creating it (mode 0600, parents must
 * exist) with random bytes when missing. A key file must hold exactly 32
 * bytes and not be readable by group or others. Returns 0, CR_EIO (cannot
 * read or create: errbuf says why), CR_EPERM (mode too open), CR_EINVAL
 * (wrong size). errbuf is caller-owned (errlen bytes, may be NULL). */
int cr_seal_key_load(const char *path, struct cr_seal_key *k, char *errbuf,
                     size_t errlen);

/* Encrypts n bytes of plain (borrowed). *out (cr__malloc'd, caller frees)
 * gets n + CR_SEAL_OVERHEAD bytes, *out_len their count. Returns 0,
 * CR_ENOMEM or CR_EIO (libcrypto failed). */
int cr_seal(const struct cr_seal_key *k, const void *plain, size_t n,
            unsigned char **out, size_t *out_len);

/* Decrypts and authenticates blob (borrowed). *out (cr__malloc'd, one more
 * byte NUL-terminated; the caller wipes and frees it) gets the plaintext,
 * *out_len its length. Returns 0, CR_EINVAL (not a sealed blob, or the tag
 * does not verify: tampered or another key), CR_ENOMEM. */
int cr_unseal(const struct cr_seal_key *k, const unsigned char *blob, size_t n,
              char **out, size_t *out_len);

/* Wipes the key. */
void cr_seal_key_wipe(struct cr_seal_key *k);

#endif
