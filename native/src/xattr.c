/*
 * Extended attributes of a path, for the command line: `cudele policy show`,
 * `cudele sync` and `cudele merge` talk to a mount through virtual attributes
 * of its directories, and Node has no xattr calls of its own.
 *
 *   xattrGet(path, name) -> Buffer, or null when the attribute is absent
 *   xattrSet(path, name, value: Buffer|string) -> undefined
 *
 * Errors throw an Error with code (the errno name) and the message the mount gave.
 */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/* Longest value read back; the virtual attributes are small JSON documents. */
#define XATTR_READ_MAX (1024 * 1024)

static char *utf8_arg (napi_env env, napi_value v)
{
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static void throw_errno (napi_env env, int err, const char *what, const char *path)
{
  char msg[1024];
  snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(err));
  napi_value e, code, m;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  const char *name = err == ENODATA ? "ENODATA" : err == ENOENT ? "ENOENT" : err == EINVAL ? "EINVAL" : err == EBUSY ? "EBUSY"
    : err == EPERM ? "EPERM" : err == EACCES ? "EACCES" : err == ENOTSUP ? "EOPNOTSUPP" : err == EXDEV ? "EXDEV"
    : err == ENOSPC ? "ENOSPC" : err == ENOTDIR ? "ENOTDIR" : err == ESTALE ? "ESTALE" : err == ENOTCONN ? "ENOTCONN" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, e, "code", code);
  napi_throw(env, e);
}

napi_value cf_xattr_get (napi_env env, napi_callback_info info)
{
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = utf8_arg(env, argv[0]);
  char *name = path ? utf8_arg(env, argv[1]) : NULL;
  napi_value out = NULL;
  if (path && name) {
    char *buf = malloc(XATTR_READ_MAX);
    ssize_t n = buf ? lgetxattr(path, name, buf, XATTR_READ_MAX) : -1;
    if (n >= 0) {
      void *data;
      napi_create_buffer_copy(env, (size_t)n, buf, &data, &out);
    } else if (errno == ENODATA) {
      napi_get_null(env, &out);
    } else {
      throw_errno(env, errno, "getxattr", path);
    }
    free(buf);
  }
  free(path);
  free(name);
  return out;
}

napi_value cf_xattr_set (napi_env env, napi_callback_info info)
{
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = utf8_arg(env, argv[0]);
  char *name = path ? utf8_arg(env, argv[1]) : NULL;
  if (path && name) {
    bool isbuf = false;
    napi_is_buffer(env, argv[2], &isbuf);
    void *data = NULL;
    size_t len = 0;
    char *str = NULL;
    if (isbuf) napi_get_buffer_info(env, argv[2], &data, &len);
    else if ((str = utf8_arg(env, argv[2])) != NULL) { data = str; len = strlen(str); }
    if (data != NULL || len == 0) {
      if (lsetxattr(path, name, data, len, 0) != 0) throw_errno(env, errno, "setxattr", path);
    }
    free(str);
  }
  free(path);
  free(name);
  return NULL;
}
