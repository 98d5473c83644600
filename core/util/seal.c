/* seal.c: AES-256-GCM sealing of secrets at rest (see seal.h). */
#include "util/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

#define NONCE 12
#define TAG 16

static void set_id(struct cr_seal_key *k) {
  unsigned char d[32];
  unsigned int len = sizeof d;
  EVP_Digest(k->key, sizeof k->key, d, &len, EVP_sha256(), NULL);
  snprintf(k->id, sizeof k->id, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
}

static int create_key(const char *path, struct cr_seal_key *k, char *errbuf,
                      size_t errlen) {
  if (RAND_bytes(k->key, sizeof k->key) != 1) {
    snprintf(errbuf, errlen, "no random bytes for a new key");
    return CR_EIO;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(errbuf, errlen, "cannot create %s: %s", path, strerror(errno));
    return CR_EIO;
  }
  ssize_t w = write(fd, k->key, sizeof k->key);
  int ok = w == (ssize_t)sizeof k->key && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path);
    snprintf(errbuf, errlen, "cannot write %s", path);
    return CR_EIO;
  }
  return 0;
}

int cr_seal_key_load(const char *path, struct cr_seal_key *k, char *errbuf,
                     size_t errlen) {
  char dummy[8];
  if (errbuf == NULL) {
    errbuf = dummy;
    errlen = sizeof dummy;
  }
  memset(k, 0, sizeof *k);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    int rc = create_key(path, k, errbuf, errlen);
    if (rc == 0)
      set_id(k);
    return rc;
  }
  if (fd < 0) {
    snprintf(errbuf, errlen, "cannot read %s: %s", path, strerror(errno));
    return CR_EIO;
  }
  struct stat st;
  int rc = fstat(fd, &st) == 0 ? 0 : CR_EIO;
  if (rc == 0 && (st.st_mode & 077) != 0) {
    snprintf(errbuf, errlen, "%s is readable by group or others (chmod 600 it)",
             path);
    rc = CR_EPERM;
  }
  if (rc == 0 && st.st_size != CR_SEAL_KEY_BYTES) {
    snprintf(errbuf, errlen, "%s must hold exactly %d bytes", path,
             CR_SEAL_KEY_BYTES);
    rc = CR_EINVAL;
  }
  if (rc == 0 && read(fd, k->key, sizeof k->key) != (ssize_t)sizeof k->key) {
    snprintf(errbuf, errlen, "cannot read %s", path);
    rc = CR_EIO;
  }
  close(fd);
  if (rc == 0)
    set_id(k);
  else
    cr_seal_key_wipe(k);
  return rc;
}

void cr_seal_key_wipe(struct cr_seal_key *k) { OPENSSL_cleanse(k, sizeof *k); }

int cr_seal(const struct cr_seal_key *k, const void *plain, size_t n,
            unsigned char **out, size_t *out_len) {
  *out = NULL;
  unsigned char *b = cr__malloc(n + CR_SEAL_OVERHEAD);
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0, rc = b && c ? 0 : CR_ENOMEM;
  if (rc == 0) {
    b[0] = 1;
    rc =
        RAND_bytes(b + 1, NONCE) == 1 &&
                EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->key, b + 1) ==
                    1 &&
                EVP_EncryptUpdate(c, b + 1 + NONCE, &len, plain, (int)n) == 1 &&
                EVP_EncryptFinal_ex(c, b + 1 + NONCE + len, &len) == 1 &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG,
                                    b + 1 + NONCE + n) == 1
            ? 0
            : CR_EIO;
  }
  EVP_CIPHER_CTX_free(c);
  if (rc != 0) {
    cr__free(b);
    return rc;
  }
  *out = b;
  *out_len = n + CR_SEAL_OVERHEAD;
  return 0;
}

int cr_unseal(const struct cr_seal_key *k, const unsigned char *blob, size_t n,
              char **out, size_t *out_len) {
  *out = NULL;
  if (n < CR_SEAL_OVERHEAD || blob[0] != 1)
    return CR_EINVAL;
  size_t m = n - CR_SEAL_OVERHEAD;
  char *p = cr__malloc(m + 1);
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int len = 0, rc = p && c ? 0 : CR_ENOMEM;
  if (rc == 0)
    rc =
        EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->key, blob + 1) == 1 &&
                EVP_DecryptUpdate(c, (unsigned char *)p, &len, blob + 1 + NONCE,
                                  (int)m) == 1 &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG,
                                    (void *)(blob + 1 + NONCE + m)) == 1 &&
                EVP_DecryptFinal_ex(c, (unsigned char *)p + len, &len) == 1
            ? 0
            : CR_EINVAL;
  EVP_CIPHER_CTX_free(c);
  if (rc != 0) {
    if (p != NULL)
      OPENSSL_cleanse(p, m + 1);
    cr__free(p);
    return rc;
  }
  p[m] = '\0';
  *out = p;
  *out_len = m;
  return 0;
}
