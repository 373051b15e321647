/*
 * Session reply methods, called by JS on its own thread. fuse_reply_* write
 * straight to the device (it is safe from any thread), so a reply costs one
 * writev and no hand-off.
 *
 * A reply to an unknown or already answered ReqId does nothing and returns
 * false. A reply with malformed arguments to a valid ReqId fails that request
 * with EIO (so the caller in the kernel is not left waiting) and throws.
 */
#include "session.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#define MAX_ARGS 6

static napi_value js_bool (napi_env env, bool v)
{
  napi_value x;
  napi_get_boolean(env, v, &x);
  return x;
}

static napi_value js_int (napi_env env, int32_t v)
{
  napi_value x;
  napi_create_int32(env, v, &x);
  return x;
}

static bool get_double (napi_env env, napi_value v, double *out)
{
  return napi_get_value_double(env, v, out) == napi_ok && !isnan(*out);
}

/* Non-negative integers (sizes, inode numbers, handles): NaN and negatives become 0. */
static uint64_t to_u64 (double d)
{
  if (!(d > 0)) return 0;
  if (d >= 18446744073709551615.0) return UINT64_MAX;
  return (uint64_t)d;
}

static int64_t to_i64 (double d)
{
  if (isnan(d)) return 0;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  if (d >= 9223372036854775807.0) return INT64_MAX;
  return (int64_t)d;
}

/* Take the request and fail it, for replies whose arguments are unusable. */
static napi_value bad_reply (cf_session *s, napi_env env, napi_value id, const char *why)
{
  fuse_req_t req;
  if (cf_take_req(s, env, id, &req, NULL)) fuse_reply_err(req, EIO);
  napi_throw_type_error(env, NULL, why);
  return NULL;
}

/* Read the shared attribute array into a struct stat. */
static bool read_attr_at (napi_env env, napi_value arr, size_t index, struct stat *st, uint64_t *generation)
{
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, arr, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < (index + 1) * ATTR_LENGTH) {
    return false;
  }
  const double *a = (const double *)data + index * ATTR_LENGTH;
  memset(st, 0, sizeof(*st));
  st->st_ino = to_u64(a[A_INO]);
  st->st_mode = (mode_t)to_u64(a[A_MODE]);
  st->st_nlink = (nlink_t)to_u64(a[A_NLINK]);
  st->st_uid = (uid_t)to_u64(a[A_UID]);
  st->st_gid = (gid_t)to_u64(a[A_GID]);
  st->st_rdev = (dev_t)to_u64(a[A_RDEV]);
  st->st_size = (off_t)to_u64(a[A_SIZE]);
  st->st_blocks = (blkcnt_t)to_u64(a[A_BLOCKS]);
  st->st_atim.tv_sec = (time_t)to_i64(a[A_ATIME]);
  st->st_atim.tv_nsec = (long)to_u64(a[A_ATIME_NS]);
  st->st_mtim.tv_sec = (time_t)to_i64(a[A_MTIME]);
  st->st_mtim.tv_nsec = (long)to_u64(a[A_MTIME_NS]);
  st->st_ctim.tv_sec = (time_t)to_i64(a[A_CTIME]);
  st->st_ctim.tv_nsec = (long)to_u64(a[A_CTIME_NS]);
  st->st_blksize = (blksize_t)to_u64(a[A_BLKSIZE]);
  if (generation != NULL) *generation = to_u64(a[A_GENERATION]);
  return true;
}

static bool cf_read_attr (cf_session *s, napi_env env, struct stat *st, uint64_t *generation)
{
  napi_value arr;
  if (s->attr == NULL || napi_get_reference_value(env, s->attr, &arr) != napi_ok || arr == NULL) return false;
  return read_attr_at(env, arr, 0, st, generation);
}

static void fill_open_flags (struct fuse_file_info *fi, uint64_t fh, uint32_t flags)
{
  memset(fi, 0, sizeof(*fi));
  fi->fh = fh;
  fi->direct_io = (flags & 1) != 0;
  fi->keep_cache = (flags & 2) != 0;
  fi->nonseekable = (flags & 4) != 0;
  fi->cache_readdir = (flags & 8) != 0;
}

/* Common preamble: `this` is a Session, argv filled, argc checked. */
#define PREAMBLE(nargs)                                              \
  size_t argc = MAX_ARGS;                                            \
  napi_value argv[MAX_ARGS];                                         \
  cf_session *s = cf_session_of(env, info, &argc, argv);             \
  if (s == NULL) return NULL;                                        \
  if (argc < (nargs)) return bad_reply(s, env, argc > 0 ? argv[0] : NULL, "not enough arguments")

static napi_value reply_err (napi_env env, napi_callback_info info)
{
  PREAMBLE(2);
  double e;
  if (!get_double(env, argv[1], &e)) return bad_reply(s, env, argv[0], "errno must be a number");
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  int err = (int)(e < 0 ? -e : e); /* accept -ENOENT as well as ENOENT */
  fuse_reply_err(req, err);
  return js_bool(env, true);
}

static bool entry_param (cf_session *s, napi_env env, napi_value *argv, struct fuse_entry_param *e)
{
  double et, at;
  uint64_t gen = 0;
  memset(e, 0, sizeof(*e));
  if (!get_double(env, argv[1], &et) || !get_double(env, argv[2], &at)) return false;
  if (!cf_read_attr(s, env, &e->attr, &gen)) return false;
  e->ino = e->attr.st_ino;
  e->generation = gen;
  e->entry_timeout = et > 0 ? et : 0;
  e->attr_timeout = at > 0 ? at : 0;
  /* ino 0: a negative entry, cached by the kernel for entry_timeout. */
  if (e->ino == 0) memset(&e->attr, 0, sizeof(e->attr));
  return true;
}

static napi_value reply_entry (napi_env env, napi_callback_info info)
{
  PREAMBLE(3);
  struct fuse_entry_param e;
  if (!entry_param(s, env, argv, &e)) return bad_reply(s, env, argv[0], "bad timeouts or attribute array");
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_entry(req, &e);
  return js_bool(env, true);
}

static napi_value reply_create (napi_env env, napi_callback_info info)
{
  PREAMBLE(5);
  struct fuse_entry_param e;
  double fh, flags;
  if (!entry_param(s, env, argv, &e) || !get_double(env, argv[3], &fh) || !get_double(env, argv[4], &flags)) {
    return bad_reply(s, env, argv[0], "bad arguments to replyCreate");
  }
  struct fuse_file_info fi;
  fill_open_flags(&fi, to_u64(fh), (uint32_t)to_u64(flags));
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_create(req, &e, &fi);
  return js_bool(env, true);
}

static napi_value reply_attr (napi_env env, napi_callback_info info)
{
  PREAMBLE(2);
  double t;
  struct stat st;
  if (!get_double(env, argv[1], &t) || !cf_read_attr(s, env, &st, NULL)) {
    return bad_reply(s, env, argv[0], "bad timeout or attribute array");
  }
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_attr(req, &st, t > 0 ? t : 0);
  return js_bool(env, true);
}

/* A JS byte string as a NUL-terminated C string; *heap is set when malloc'd. */
static char *latin1 (napi_env env, napi_value v, char *stack, size_t stack_size, size_t *len, bool *heap)
{
  size_t n;
  *heap = false;
  if (napi_get_value_string_latin1(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *p = stack;
  if (n + 1 > stack_size) {
    p = malloc(n + 1);
    if (p == NULL) return NULL;
    *heap = true;
  }
  napi_get_value_string_latin1(env, v, p, n + 1, &n);
  if (len != NULL) *len = n;
  return p;
}

static napi_value reply_readlink (napi_env env, napi_callback_info info)
{
  PREAMBLE(2);
  char stack[1024];
  bool heap;
  char *target = latin1(env, argv[1], stack, sizeof(stack), NULL, &heap);
  if (target == NULL) return bad_reply(s, env, argv[0], "target must be a string");
  fuse_req_t req;
  bool ok = cf_take_req(s, env, argv[0], &req, NULL);
  if (ok) fuse_reply_readlink(req, target);
  if (heap) free(target);
  return js_bool(env, ok);
}

static napi_value reply_open (napi_env env, napi_callback_info info)
{
  PREAMBLE(3);
  double fh, flags;
  if (!get_double(env, argv[1], &fh) || !get_double(env, argv[2], &flags)) {
    return bad_reply(s, env, argv[0], "fh and flags must be numbers");
  }
  struct fuse_file_info fi;
  fill_open_flags(&fi, to_u64(fh), (uint32_t)to_u64(flags));
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_open(req, &fi);
  return js_bool(env, true);
}

static napi_value reply_write (napi_env env, napi_callback_info info)
{
  PREAMBLE(2);
  double count;
  if (!get_double(env, argv[1], &count)) return bad_reply(s, env, argv[0], "count must be a number");
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_write(req, (size_t)to_u64(count));
  return js_bool(env, true);
}

static bool view_bytes (napi_env env, napi_value v, void **data, size_t *len)
{
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  size_t n;
  if (napi_get_typedarray_info(env, v, &type, &n, data, NULL, NULL) != napi_ok) return false;
  size_t unit = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: unit = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: unit = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: unit = 8; break;
    default: unit = 1;
  }
  *len = n * unit;
  if (*data == NULL) *data = (void *)"";
  return true;
}

static napi_value reply_buf (napi_env env, napi_callback_info info)
{
  PREAMBLE(2);
  void *data;
  size_t len;
  if (view_bytes(env, argv[1], &data, &len)) {
    fuse_req_t req;
    if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
    fuse_reply_buf(req, data, len);
    return js_bool(env, true);
  }
  bool is_array;
  uint32_t n;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &n) != napi_ok) {
    return bad_reply(s, env, argv[0], "data must be a Uint8Array or an array of them");
  }
  struct iovec stack_iov[16];
  struct iovec *iov = n <= 16 ? stack_iov : malloc(n * sizeof(*iov));
  if (iov == NULL) return bad_reply(s, env, argv[0], "out of memory");
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok ||
        !view_bytes(env, el, &iov[i].iov_base, &iov[i].iov_len)) {
      if (iov != stack_iov) free(iov);
      return bad_reply(s, env, argv[0], "data must be a Uint8Array or an array of them");
    }
  }
  fuse_req_t req;
  bool ok = cf_take_req(s, env, argv[0], &req, NULL);
  if (ok) fuse_reply_iov(req, iov, (int)n);
  if (iov != stack_iov) free(iov);
  return js_bool(env, ok);
}

static napi_value reply_statfs (napi_env env, napi_callback_info info)
{
  size_t argc = 11;
  napi_value argv[11];
  cf_session *s = cf_session_of(env, info, &argc, argv);
  if (s == NULL) return NULL;
  double v[10];
  if (argc < 11) return bad_reply(s, env, argc > 0 ? argv[0] : NULL, "replyStatfs needs 11 arguments");
  for (int i = 0; i < 10; i++) {
    if (!get_double(env, argv[i + 1], &v[i])) return bad_reply(s, env, argv[0], "statfs values must be numbers");
  }
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  st.f_bsize = to_u64(v[0]);
  st.f_frsize = to_u64(v[1]);
  st.f_blocks = to_u64(v[2]);
  st.f_bfree = to_u64(v[3]);
  st.f_bavail = to_u64(v[4]);
  st.f_files = to_u64(v[5]);
  st.f_ffree = to_u64(v[6]);
  st.f_favail = to_u64(v[7]);
  st.f_fsid = to_u64(v[8]);
  st.f_namemax = to_u64(v[9]);
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_statfs(req, &st);
  return js_bool(env, true);
}

static napi_value reply_xattr_size (napi_env env, napi_callback_info info)
{
  PREAMBLE(2);
  double size;
  if (!get_double(env, argv[1], &size)) return bad_reply(s, env, argv[0], "size must be a number");
  fuse_req_t req;
  if (!cf_take_req(s, env, argv[0], &req, NULL)) return js_bool(env, false);
  fuse_reply_xattr(req, (size_t)to_u64(size));
  return js_bool(env, true);
}

/* Property keys of DirEntry, made once per reply rather than per entry. */
typedef struct { napi_value name, ino, type, off; } dirent_keys;

static bool get_keys (napi_env env, dirent_keys *k)
{
  return napi_create_string_latin1(env, "name", 4, &k->name) == napi_ok &&
         napi_create_string_latin1(env, "ino", 3, &k->ino) == napi_ok &&
         napi_create_string_latin1(env, "type", 4, &k->type) == napi_ok &&
         napi_create_string_latin1(env, "off", 3, &k->off) == napi_ok;
}

/* One DirEntry: name into buf (NUL-terminated), the numbers as doubles. */
static bool read_dirent (napi_env env, const dirent_keys *k, napi_value el, char *buf, size_t bufsize,
                         double *ino, double *type, double *off)
{
  napi_value v;
  size_t n;
  if (napi_get_property(env, el, k->name, &v) != napi_ok ||
      napi_get_value_string_latin1(env, v, buf, bufsize, &n) != napi_ok || n + 1 >= bufsize) {
    return false;
  }
  return napi_get_property(env, el, k->ino, &v) == napi_ok && get_double(env, v, ino) &&
         napi_get_property(env, el, k->type, &v) == napi_ok && get_double(env, v, type) &&
         napi_get_property(env, el, k->off, &v) == napi_ok && get_double(env, v, off);
}

static bool dirbuf_reserve (cf_session *s, size_t size)
{
  if (s->dirbuf_cap >= size) return true;
  char *p = realloc(s->dirbuf, size);
  if (p == NULL) return false;
  s->dirbuf = p;
  s->dirbuf_cap = size;
  return true;
}

/*
 * readdir and readdirplus: pack entries until the kernel's buffer is full and
 * return how many went out. An empty reply tells the kernel the directory
 * has ended, so JS passes an empty list only at the end.
 */
static napi_value reply_dir (napi_env env, napi_callback_info info, bool plus)
{
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  cf_session *s = cf_session_of(env, info, &argc, argv);
  if (s == NULL) return NULL;
  double size, et = 0, at = 0;
  bool is_array;
  uint32_t n;
  dirent_keys k;
  napi_value attrs = NULL;
  if (argc < (plus ? 6u : 3u) || !get_double(env, argv[1], &size) ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &n) != napi_ok || !get_keys(env, &k)) {
    bad_reply(s, env, argc > 0 ? argv[0] : NULL, "replyReaddir(req, size, entries[])");
    return NULL;
  }
  if (plus) {
    attrs = argv[3];
    napi_typedarray_type type;
    size_t len;
    bool is_ta;
    if (napi_is_typedarray(env, attrs, &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, attrs, &type, &len, NULL, NULL, NULL) != napi_ok ||
        type != napi_float64_array || len < (size_t)n * ATTR_LENGTH ||
        !get_double(env, argv[4], &et) || !get_double(env, argv[5], &at)) {
      bad_reply(s, env, argv[0], "replyReaddirPlus(req, size, entries[], attrs: Float64Array, entryTimeout, attrTimeout)");
      return NULL;
    }
  }
  fuse_req_t req;
  cf_slot slot;
  if (!cf_take_req(s, env, argv[0], &req, &slot)) return js_int(env, -1);

  /* Never more than the kernel asked for, whatever JS says. */
  size_t cap = (size_t)to_u64(size);
  if (cap == 0 || cap > slot.size) cap = slot.size;
  if (!dirbuf_reserve(s, cap)) {
    fuse_reply_err(req, ENOMEM);
    return js_int(env, 0);
  }

  size_t pos = 0;
  uint32_t i;
  char name[1024];
  bool malformed = false;
  for (i = 0; i < n; i++) {
    napi_value el;
    double ino, type, off;
    if (napi_get_element(env, argv[2], i, &el) != napi_ok ||
        !read_dirent(env, &k, el, name, sizeof(name), &ino, &type, &off)) {
      malformed = true;
      break;
    }
    size_t used;
    if (!plus) {
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = to_u64(ino);
      st.st_mode = (mode_t)to_u64(type);
      used = fuse_add_direntry(req, s->dirbuf + pos, cap - pos, name, &st, (off_t)to_i64(off));
    } else {
      struct fuse_entry_param e;
      uint64_t gen = 0;
      memset(&e, 0, sizeof(e));
      if (!read_attr_at(env, attrs, i, &e.attr, &gen)) {
        malformed = true;
        break;
      }
      if (e.attr.st_ino != 0) {
        e.ino = e.attr.st_ino;
        e.generation = gen;
        e.entry_timeout = et > 0 ? et : 0;
        e.attr_timeout = at > 0 ? at : 0;
      } else {
        /* No entry for this name: the dirent still needs its inode and type. */
        memset(&e.attr, 0, sizeof(e.attr));
        e.attr.st_ino = to_u64(ino);
        e.attr.st_mode = (mode_t)to_u64(type);
      }
      used = fuse_add_direntry_plus(req, s->dirbuf + pos, cap - pos, name, &e, (off_t)to_i64(off));
    }
    if (used > cap - pos) break;
    pos += used;
  }
  fuse_reply_buf(req, s->dirbuf, pos);
  if (malformed) {
    /* What came before went out; the caller learns its list is broken. */
    napi_throw_type_error(env, NULL, "entries must be { name: string, ino, type, off: number } objects");
    return NULL;
  }
  return js_int(env, (int32_t)i);
}

static napi_value reply_readdir (napi_env env, napi_callback_info info)
{
  return reply_dir(env, info, false);
}

static napi_value reply_readdirplus (napi_env env, napi_callback_info info)
{
  return reply_dir(env, info, true);
}

#define METHOD(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_default, NULL }

napi_status cf_define_replies (napi_env env, napi_property_descriptor *props, size_t *n)
{
  (void)env;
  const napi_property_descriptor list[] = {
    METHOD("replyErr", reply_err),
    METHOD("replyEntry", reply_entry),
    METHOD("replyCreate", reply_create),
    METHOD("replyAttr", reply_attr),
    METHOD("replyReadlink", reply_readlink),
    METHOD("replyOpen", reply_open),
    METHOD("replyWrite", reply_write),
    METHOD("replyBuf", reply_buf),
    METHOD("replyStatfs", reply_statfs),
    METHOD("replyXattrSize", reply_xattr_size),
    METHOD("replyReaddir", reply_readdir),
    METHOD("replyReaddirPlus", reply_readdirplus),
  };
  size_t count = sizeof(list) / sizeof(list[0]);
  memcpy(props + *n, list, sizeof(list));
  *n += count;
  return napi_ok;
}
