/* error.h: connrun error codes (cr_err) and their names/messages.
 *
 * Every library function returns int: 0 on success, a negative CR_E* code on
 * failure. Codes are generated from one X-macro list; a retired code keeps its
 * number forever. */
#ifndef CR_ERROR_H
#define CR_ERROR_H

#define CR_ERRNO_MAP(XX)                                                       \
  XX(ENOMEM, -1, "out of memory")                                              \
  XX(EINVAL, -2, "invalid argument")                                           \
  XX(EIO, -3, "I/O error")                                                     \
  XX(ENOENT, -4, "not found")                                                  \
  XX(EEXIST, -5, "already exists")                                             \
  XX(ECONFIG, -6, "invalid configuration")                                     \
  XX(EPLUGIN, -7, "plugin refused")                                            \
  XX(EABI, -8, "plugin ABI mismatch")                                          \
  XX(ESTORE, -9, "store error")                                                \
  XX(ESCHEMA, -10, "JSON Schema validation failed")                            \
  XX(ESTATE, -11, "illegal state transition")                                  \
  XX(EBUSY, -12, "resource busy")                                              \
  XX(ETIMEDOUT, -13, "timed out")                                              \
  XX(ECANCELED, -14, "operation canceled")                                     \
  XX(EHTTP, -15, "HTTP request failed")                                        \
  XX(EPERM, -16, "permission denied")                                          \
  XX(ERANGE, -17, "value out of range")                                        \
  XX(ENOTSUP, -18, "operation not supported")                                  \
  XX(ESTALE, -19, "stale lease epoch")                                         \
  XX(EPARSE, -20, "parse error")                                               \
  XX(ESCHEMAVER, -21, "store schema is newer than this build")                 \
  XX(ELIMIT, -22, "resource limit exceeded")

typedef enum {
  CR_OK = 0,
#define XX(name, code, msg) CR_##name = (code),
  CR_ERRNO_MAP(XX)
#undef XX
} cr_err;

/* Human-readable message for an error code ("out of memory"). Never NULL;
 * unknown codes give "unknown error". Returned string is static. */
const char *cr_strerror(int err);

/* Symbolic name for an error code ("CR_ENOMEM"). Never NULL; static. */
const char *cr_err_name(int err);

#endif
