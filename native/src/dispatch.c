/*
 * The JS side of the request queue: records from the reader thread become
 * calls to the handlers given to mount(), and each request gets a ReqId that
 * a reply later turns back into the fuse_req_t.
 *
 * Everything here runs on the JS thread.
 */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const cf_op_names[OP_COUNT] = {
  [OP_LOOKUP] = "lookup", [OP_FORGET] = "forget", [OP_GETATTR] = "getattr",
  [OP_SETATTR] = "setattr", [OP_READLINK] = "readlink", [OP_MKNOD] = "mknod",
  [OP_MKDIR] = "mkdir", [OP_UNLINK] = "unlink", [OP_RMDIR] = "rmdir",
  [OP_SYMLINK] = "symlink", [OP_RENAME] = "rename", [OP_LINK] = "link",
  [OP_OPEN] = "open", [OP_READ] = "read", [OP_WRITE] = "write",
  [OP_FLUSH] = "flush", [OP_RELEASE] = "release", [OP_FSYNC] = "fsync",
  [OP_OPENDIR] = "opendir", [OP_READDIR] = "readdir",
  [OP_READDIRPLUS] = "readdirplus", [OP_RELEASEDIR] = "releasedir",
  [OP_FSYNCDIR] = "fsyncdir", [OP_STATFS] = "statfs",
  [OP_SETXATTR] = "setxattr", [OP_GETXATTR] = "getxattr",
  [OP_LISTXATTR] = "listxattr", [OP_REMOVEXATTR] = "removexattr",
  [OP_ACCESS] = "access", [OP_CREATE] = "create",
  [OP_FALLOCATE] = "fallocate", [OP_INIT] = "init", [OP_EXIT] = "exit",
};

void cf_record_free (cf_record *r)
{
  if (r->data_owned) free(r->data);
  free(r->pairs);
  free(r);
}

/* ------------------------------------------------------------------ */
/* Lifetime                                                            */
/* ------------------------------------------------------------------ */

void cf_session_unref (cf_session *s)
{
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  pthread_mutex_destroy(&s->unmount_lock);
  pthread_mutex_destroy(&s->js_lock);
  pthread_mutex_destroy(&s->nlock);
  pthread_cond_destroy(&s->ncond);
  free(s->slots);
  free(s->dirbuf);
  free(s->mountpoint);
  free(s);
}

/*
 * The fuse_session may only be destroyed when nothing can use it any more:
 * after JS has handled exit (no replies follow) and the notify thread has
 * returned (it may sit in the kernel for a while). Whichever comes last
 * destroys it.
 */
void cf_teardown_step (cf_session *s)
{
  if (atomic_fetch_sub(&s->teardown_waits, 1) != 1) return;
  fuse_session_destroy(s->se);
  s->se = NULL;
  close(s->dev_fd);
  s->dev_fd = -1;
  cf_session_unref(s);
}

/* The reader released the queue and it is drained: drop the JS references. */
void cf_tsfn_finalize (napi_env env, void *data, void *hint)
{
  cf_session *s = data;
  (void)hint;
  for (int i = 0; i < OP_COUNT; i++) {
    if (s->fn[i] != NULL) napi_delete_reference(env, s->fn[i]);
    s->fn[i] = NULL;
  }
  if (s->handlers != NULL) napi_delete_reference(env, s->handlers);
  if (s->attr != NULL) napi_delete_reference(env, s->attr);
  s->handlers = NULL;
  s->attr = NULL;
  cf_session_unref(s);
}

/* ------------------------------------------------------------------ */
/* Slots                                                               */
/* ------------------------------------------------------------------ */

#define NO_SLOT UINT32_MAX
#define GEN_LIMIT (1u << 30) /* keeps ReqIds below 2^52 */

static double slot_alloc (cf_session *s, cf_record *r)
{
  if (s->free_head == NO_SLOT) {
    uint32_t n = s->nslots ? s->nslots * 2 : 256;
    if (n > CF_MAX_SLOTS || n <= s->nslots) return -1;
    cf_slot *t = realloc(s->slots, n * sizeof(*t));
    if (t == NULL) return -1;
    for (uint32_t i = s->nslots; i < n; i++) {
      t[i].req = NULL;
      t[i].gen = 0;
      t[i].next_free = i + 1 < n ? i + 1 : NO_SLOT;
    }
    s->slots = t;
    s->free_head = s->nslots;
    s->nslots = n;
  }
  uint32_t i = s->free_head;
  cf_slot *sl = &s->slots[i];
  s->free_head = sl->next_free;
  sl->req = r->req;
  sl->size = r->size;
  sl->gen = sl->gen + 1 < GEN_LIMIT ? sl->gen + 1 : 1;
  return (double)(((uint64_t)sl->gen << CF_SLOT_BITS) | i);
}

static bool take_id (cf_session *s, double d, fuse_req_t *req, cf_slot *out)
{
  if (s->ended || !(d >= 0 && d < 9007199254740992.0)) return false;
  uint64_t v = (uint64_t)d;
  if ((double)v != d) return false;
  uint32_t i = (uint32_t)(v & (CF_MAX_SLOTS - 1));
  uint64_t gen = v >> CF_SLOT_BITS;
  if (i >= s->nslots) return false;
  cf_slot *sl = &s->slots[i];
  if (sl->req == NULL || sl->gen != gen) return false;
  *req = sl->req;
  if (out != NULL) *out = *sl;
  sl->req = NULL;
  sl->next_free = s->free_head;
  s->free_head = i;
  return true;
}

/* Validate a ReqId from JS and take its request out of the table. */
bool cf_take_req (cf_session *s, napi_env env, napi_value id, fuse_req_t *req, cf_slot *slot)
{
  double d;
  if (napi_get_value_double(env, id, &d) != napi_ok) return false;
  return take_id(s, d, req, slot);
}

/* ------------------------------------------------------------------ */
/* Calling handlers                                                    */
/* ------------------------------------------------------------------ */

static napi_value num (napi_env env, double v)
{
  napi_value x;
  napi_create_double(env, v, &x);
  return x;
}

static napi_value u32 (napi_env env, uint32_t v)
{
  napi_value x;
  napi_create_uint32(env, v, &x);
  return x;
}

static napi_value boolean (napi_env env, bool v)
{
  napi_value x;
  napi_get_boolean(env, v, &x);
  return x;
}

/* Names are byte strings: one JS character per byte. */
static napi_value bytes (napi_env env, const char *p, size_t n)
{
  napi_value x;
  napi_create_string_latin1(env, p, n, &x);
  return x;
}

static napi_value fh_or_null (napi_env env, const cf_record *r)
{
  napi_value x;
  if (r->has_fh) return num(env, (double)r->fh);
  napi_get_null(env, &x);
  return x;
}

static napi_value caller (napi_env env, const cf_record *r)
{
  napi_value o;
  napi_property_descriptor p[4] = {
    { "uid", NULL, NULL, NULL, NULL, u32(env, r->caller.uid), napi_default_jsproperty, NULL },
    { "gid", NULL, NULL, NULL, NULL, u32(env, r->caller.gid), napi_default_jsproperty, NULL },
    { "pid", NULL, NULL, NULL, NULL, u32(env, r->caller.pid), napi_default_jsproperty, NULL },
    { "umask", NULL, NULL, NULL, NULL, u32(env, r->caller.umask), napi_default_jsproperty, NULL },
  };
  napi_create_object(env, &o);
  napi_define_properties(env, o, 4, p);
  return o;
}

static void free_write_data (napi_env env, void *data, void *hint)
{
  (void)env;
  (void)hint;
  free(data);
}

/* Hand the write payload to JS; the Buffer frees it when collected. */
static napi_value write_data (napi_env env, cf_record *r)
{
  napi_value b;
  if (napi_create_external_buffer(env, r->data_len, r->data, free_write_data, NULL, &b) == napi_ok) {
    r->data_owned = false;
    return b;
  }
  napi_create_buffer_copy(env, r->data_len, r->data, NULL, &b);
  return b;
}

/*
 * Call a handler. If it throws, the request (when it is still unanswered)
 * fails with EIO, and the exception goes to process 'uncaughtException' like
 * any other uncaught error.
 */
static void invoke (cf_session *s, napi_env env, int op, size_t argc, napi_value *argv, double id)
{
  napi_value fn, recv, result;
  if (napi_get_reference_value(env, s->fn[op], &fn) != napi_ok || fn == NULL ||
      napi_get_reference_value(env, s->handlers, &recv) != napi_ok) {
    fuse_req_t req;
    if (id >= 0 && take_id(s, id, &req, NULL)) fuse_reply_err(req, ENOSYS);
    return;
  }
  if (napi_call_function(env, recv, fn, argc, argv, &result) == napi_ok) return;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  napi_value exc = NULL;
  if (pending) napi_get_and_clear_last_exception(env, &exc);
  fuse_req_t req;
  if (id >= 0 && take_id(s, id, &req, NULL)) fuse_reply_err(req, EIO);
  if (exc != NULL) napi_fatal_exception(env, exc);
}

static void deliver_request (cf_session *s, napi_env env, cf_record *r)
{
  if (s->fn[r->op] == NULL) {
    fuse_reply_err(r->req, ENOSYS);
    return;
  }
  double id = slot_alloc(s, r);
  if (id < 0) {
    fuse_reply_err(r->req, ENOMEM);
    return;
  }
  napi_value a[13];
  size_t n = 0;
  a[n++] = num(env, id);
  switch (r->op) {
    case OP_LOOKUP:
    case OP_UNLINK:
    case OP_RMDIR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      break;
    case OP_GETATTR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = fh_or_null(env, r);
      break;
    case OP_SETATTR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = u32(env, r->flags);
      a[n++] = u32(env, r->mode);
      a[n++] = u32(env, r->uid);
      a[n++] = u32(env, r->gid);
      a[n++] = num(env, (double)r->size);
      a[n++] = num(env, (double)r->atime);
      a[n++] = num(env, (double)r->atime_ns);
      a[n++] = num(env, (double)r->mtime);
      a[n++] = num(env, (double)r->mtime_ns);
      a[n++] = fh_or_null(env, r);
      a[n++] = caller(env, r);
      break;
    case OP_READLINK:
    case OP_STATFS:
      a[n++] = num(env, (double)r->ino);
      break;
    case OP_MKNOD:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = u32(env, r->mode);
      a[n++] = num(env, (double)r->size);
      a[n++] = caller(env, r);
      break;
    case OP_MKDIR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = u32(env, r->mode);
      a[n++] = caller(env, r);
      break;
    case OP_SYMLINK:
      a[n++] = bytes(env, r->name2, r->name2_len);
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = caller(env, r);
      break;
    case OP_RENAME:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = num(env, (double)r->ino2);
      a[n++] = bytes(env, r->name2, r->name2_len);
      a[n++] = u32(env, r->flags);
      break;
    case OP_LINK:
      a[n++] = num(env, (double)r->ino);
      a[n++] = num(env, (double)r->ino2);
      a[n++] = bytes(env, r->name, r->name_len);
      break;
    case OP_OPEN:
      a[n++] = num(env, (double)r->ino);
      a[n++] = u32(env, r->flags);
      a[n++] = caller(env, r);
      break;
    case OP_READ:
    case OP_READDIR:
    case OP_READDIRPLUS:
      a[n++] = num(env, (double)r->ino);
      a[n++] = num(env, (double)r->size);
      a[n++] = num(env, (double)r->off);
      a[n++] = fh_or_null(env, r);
      break;
    case OP_WRITE:
      a[n++] = num(env, (double)r->ino);
      a[n++] = write_data(env, r);
      a[n++] = num(env, (double)r->off);
      a[n++] = fh_or_null(env, r);
      a[n++] = u32(env, r->flags);
      a[n++] = caller(env, r);
      break;
    case OP_FLUSH:
    case OP_RELEASEDIR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = fh_or_null(env, r);
      break;
    case OP_RELEASE:
      a[n++] = num(env, (double)r->ino);
      a[n++] = fh_or_null(env, r);
      a[n++] = u32(env, r->flags);
      break;
    case OP_FSYNC:
    case OP_FSYNCDIR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = boolean(env, r->flag);
      a[n++] = fh_or_null(env, r);
      break;
    case OP_OPENDIR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = u32(env, r->flags);
      break;
    case OP_SETXATTR: {
      napi_value v;
      napi_create_buffer_copy(env, r->data_len, r->data_len ? r->data : "", NULL, &v);
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = v;
      a[n++] = u32(env, r->flags);
      break;
    }
    case OP_GETXATTR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = num(env, (double)r->size);
      break;
    case OP_LISTXATTR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = num(env, (double)r->size);
      a[n++] = caller(env, r);
      break;
    case OP_REMOVEXATTR:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      break;
    case OP_ACCESS:
      a[n++] = num(env, (double)r->ino);
      a[n++] = u32(env, r->flags);
      a[n++] = caller(env, r);
      break;
    case OP_CREATE:
      a[n++] = num(env, (double)r->ino);
      a[n++] = bytes(env, r->name, r->name_len);
      a[n++] = u32(env, r->mode);
      a[n++] = u32(env, r->flags);
      a[n++] = caller(env, r);
      break;
    case OP_FALLOCATE:
      a[n++] = num(env, (double)r->ino);
      a[n++] = u32(env, r->mode);
      a[n++] = num(env, (double)r->off);
      a[n++] = num(env, (double)r->size);
      a[n++] = fh_or_null(env, r);
      break;
    default: {
      fuse_req_t req;
      if (take_id(s, id, &req, NULL)) fuse_reply_err(req, ENOSYS);
      return;
    }
  }
  invoke(s, env, r->op, n, a, id);
}

static void deliver_forget (cf_session *s, napi_env env, cf_record *r)
{
  if (s->fn[OP_FORGET] == NULL || r->count == 0) return;
  void *data;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, r->count * 2 * sizeof(double), &data, &ab) != napi_ok) return;
  memcpy(data, r->pairs, r->count * 2 * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, r->count * 2, ab, 0, &arr);
  invoke(s, env, OP_FORGET, 1, &arr, -1);
}

static void deliver_init (cf_session *s, napi_env env, cf_record *r)
{
  if (s->fn[OP_INIT] == NULL) return;
  napi_value info;
  napi_property_descriptor p[6] = {
    { "protoMajor", NULL, NULL, NULL, NULL, u32(env, r->init.proto_major), napi_default_jsproperty, NULL },
    { "protoMinor", NULL, NULL, NULL, NULL, u32(env, r->init.proto_minor), napi_default_jsproperty, NULL },
    { "maxWrite", NULL, NULL, NULL, NULL, u32(env, r->init.max_write), napi_default_jsproperty, NULL },
    { "maxReadahead", NULL, NULL, NULL, NULL, u32(env, r->init.max_readahead), napi_default_jsproperty, NULL },
    { "capable", NULL, NULL, NULL, NULL, u32(env, r->init.capable), napi_default_jsproperty, NULL },
    { "want", NULL, NULL, NULL, NULL, u32(env, r->init.want), napi_default_jsproperty, NULL },
  };
  napi_create_object(env, &info);
  napi_define_properties(env, info, 6, p);
  invoke(s, env, OP_INIT, 1, &info, -1);
}

/* The session ended: nothing more comes from the kernel, and replies become no-ops. */
static void deliver_exit (cf_session *s, napi_env env)
{
  s->ended = true;
  /* Requests JS never answered: free them (the kernel has failed them already). */
  for (uint32_t i = 0; i < s->nslots; i++) {
    if (s->slots[i].req != NULL) {
      fuse_reply_none(s->slots[i].req);
      s->slots[i].req = NULL;
    }
  }
  napi_remove_env_cleanup_hook(env, cf_session_env_cleanup, s);
  cf_notify_stop(s);
  bool call_exit = s->fn[OP_EXIT] != NULL;
  /* s stays allocated: the queue (tsfn) still holds a reference to it. */
  cf_teardown_step(s);
  if (call_exit) invoke(s, env, OP_EXIT, 0, NULL, -1);
}

void cf_call_js (napi_env env, napi_value js_cb, void *context, void *data)
{
  cf_session *s = context;
  cf_record *r = data;
  (void)js_cb;
  if (env == NULL) {
    /* The environment is shutting down; nobody will answer this request. */
    if (r->req != NULL) fuse_reply_err(r->req, ENOTCONN);
    cf_record_free(r);
    return;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  switch (r->op) {
    case OP_EXIT: deliver_exit(s, env); break;
    case OP_INIT: deliver_init(s, env, r); break;
    case OP_FORGET: deliver_forget(s, env, r); break;
    default: deliver_request(s, env, r); break;
  }
  napi_close_handle_scope(env, scope);
  cf_record_free(r);
}
