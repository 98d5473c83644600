/* error.c: cr_strerror() and cr_err_name(), generated from CR_ERRNO_MAP. */
#include "util/error.h"

const char *cr_strerror(int err) {
  switch (err) {
  case CR_OK:
    return "success";
#define XX(name, code, msg)                                                    \
  case CR_##name:                                                              \
    return msg;
    CR_ERRNO_MAP(XX)
#undef XX
  }
  return "unknown error";
}

const char *cr_err_name(int err) {
  switch (err) {
  case CR_OK:
    return "CR_OK";
#define XX(name, code, msg)                                                    \
  case CR_##name:                                                              \
    return "CR_" #name;
    CR_ERRNO_MAP(XX)
#undef XX
  }
  return "CR_EUNKNOWN";
}
