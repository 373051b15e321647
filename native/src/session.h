/*
 * Shared declarations of the cudele FUSE binding.
 *
 * Threads and who owns what:
 *   - the reader thread runs fuse_session_loop(); the lowlevel handlers in
 *     ops.c copy each request into a cf_record and queue it to JS through a
 *     napi_threadsafe_function. It never waits for JS.
 *   - the JS thread turns records into handler calls (dispatch.c), owns the
 *     table of outstanding requests (the ReqId slots) and sends replies
 *     (replies.c). Nothing else touches the slot table, so it needs no lock.
 *   - the notify thread (notify.c) sends cache invalidations, which may block
 *     in the kernel behind a directory lock held by a request JS has not
 *     answered yet.
 */
#ifndef CUDELE_FUSE_SESSION_H
#define CUDELE_FUSE_SESSION_H

#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests JS sees; cf_op_names (dispatch.c) holds their handler names. */
enum cf_op {
  OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
  OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN,
  OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR,
  OP_READDIRPLUS, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR,
  OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE,
  OP_FALLOCATE, OP_INIT, OP_EXIT,
  OP_COUNT
};

extern const char *const cf_op_names[OP_COUNT];

/* Layout of the shared attribute array (ATTR in src/fuse/native.ts). */
enum {
  A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS,
  A_ATIME, A_ATIME_NS, A_MTIME, A_MTIME_NS, A_CTIME, A_CTIME_NS,
  A_BLKSIZE, A_GENERATION,
  ATTR_LENGTH
};

/* Forgets are delivered in batches of at most this many (ino, nlookup) pairs. */
#define CF_FORGET_BATCH 512

/*
 * One request on its way from the reader thread to JS: a single allocation
 * holding the numbers and copies of the names (the tail), so nothing in it
 * points into libfuse's receive buffer, which is reused for the next request.
 */
typedef struct cf_record {
  uint8_t op;
  bool has_fh;
  bool flag;                  /* fsync/fsyncdir: datasync */
  fuse_req_t req;             /* NULL for forget batches, init, exit */
  uint64_t ino;               /* inode, or parent directory */
  uint64_t ino2;              /* new parent (rename, link) */
  uint64_t fh;
  uint64_t off;
  uint64_t size;              /* size, length, or rdev */
  uint32_t mode;
  uint32_t flags;             /* open flags, rename/xattr flags, mask, to_set */
  uint32_t uid, gid;          /* setattr values */
  int64_t atime, atime_ns, mtime, mtime_ns;
  struct { uint32_t uid, gid, pid, umask; } caller;
  bool has_caller;
  uint32_t name_len, name2_len;
  const char *name, *name2;   /* point into tail, NUL-terminated */
  char *data;                 /* write / setxattr payload */
  size_t data_len;
  bool data_owned;            /* data is a separate block JS takes over */
  size_t count;               /* forget batch: number of pairs */
  double *pairs;              /* forget batch: ino, nlookup, ino, nlookup... */
  struct {                    /* init */
    uint32_t proto_major, proto_minor, max_write, max_readahead, capable, want;
  } init;
  char tail[];
} cf_record;

/* An outstanding request, owned by the JS thread. */
typedef struct cf_slot {
  fuse_req_t req;             /* NULL when free */
  uint32_t gen;               /* bumped on every use, part of the ReqId */
  uint32_t next_free;
  uint64_t size;              /* the kernel's buffer size, for readdir */
} cf_slot;

/* A queued cache invalidation (notify.c). */
typedef struct cf_notice {
  struct cf_notice *next;
  bool entry;                 /* inval_entry, else inval_inode */
  uint64_t ino;
  int64_t off, len;
  size_t name_len;
  char name[];
} cf_notice;

typedef struct cf_session {
  /* Set at mount, then read-only. */
  struct fuse_session *se;
  int lib_fd;                 /* libfuse's /dev/fuse descriptor (closed by unmount) */
  int dev_fd;                 /* our duplicate, used for all I/O; closed at destroy */
  char *mountpoint;
  uint32_t max_write, max_readahead;
  bool readdirplus, writeback_cache;
  napi_threadsafe_function tsfn;
  napi_ref handlers;          /* the handlers object, `this` for every call */
  napi_ref fn[OP_COUNT];      /* handler functions; NULL = not implemented */
  napi_ref attr;              /* the shared Float64Array */

  /* Reader thread only. */
  cf_record *forgets;         /* batch being collected, or NULL */

  /* JS thread only. */
  cf_slot *slots;
  uint32_t nslots, free_head;
  bool unmount_called;
  bool ended;                 /* exit delivered: no more requests or replies */
  char *dirbuf;               /* readdir packing buffer */
  size_t dirbuf_cap;

  /* Shared between threads. */
  pthread_mutex_t unmount_lock; /* fuse_session_unmount from two threads */
  pthread_mutex_t js_lock;    /* guards js_gone against the queue's use */
  bool js_gone;               /* the JS environment is being torn down */
  atomic_int teardown_waits;  /* JS exit handling + notify thread; 0 => destroy */
  atomic_int refs;            /* JS object, live fuse session, queue, reader thread; 0 => free */

  pthread_mutex_t nlock;
  pthread_cond_t ncond;
  cf_notice *nhead, *ntail;
  bool nstop;
} cf_session;

/* Per-env data: the Session constructor. */
typedef struct cf_module {
  napi_ref session_ctor;
  bool constructing;          /* Session can only be made by mount() */
} cf_module;

/* ReqIds: slot index in the low bits, slot generation above. */
#define CF_SLOT_BITS 22
#define CF_MAX_SLOTS (1u << CF_SLOT_BITS)

/* ops.c */
void cf_ops_fill(struct fuse_lowlevel_ops *ops, const cf_session *s);
extern const struct fuse_custom_io cf_custom_io;
void cf_forgets_flush(cf_session *s);
void *cf_reader_main(void *arg);

/* dispatch.c */
void cf_call_js(napi_env env, napi_value js_cb, void *context, void *data);
void cf_tsfn_finalize(napi_env env, void *data, void *hint);
void cf_record_free(cf_record *r);
bool cf_take_req(cf_session *s, napi_env env, napi_value id, fuse_req_t *req, cf_slot *slot);
void cf_session_unref(cf_session *s);
void cf_teardown_step(cf_session *s);

/* replies.c */
napi_status cf_define_replies(napi_env env, napi_property_descriptor *props, size_t *n);

/* notify.c */
int cf_notify_start(cf_session *s);
void cf_notify_stop(cf_session *s);
napi_value cf_notify_inval_entry(napi_env env, napi_callback_info info);
napi_value cf_notify_inval_inode(napi_env env, napi_callback_info info);

/* mount.c */
void cf_install_log(void);
napi_value cf_mount(napi_env env, napi_callback_info info);
napi_value cf_unmount(napi_env env, napi_callback_info info);
void cf_unmount_session(cf_session *s);
void cf_session_env_cleanup(void *arg);

/* xattr.c */
napi_value cf_xattr_get(napi_env env, napi_callback_info info);
napi_value cf_xattr_set(napi_env env, napi_callback_info info);

/* binding.c */
cf_module *cf_module_of(napi_env env);
cf_session *cf_session_of(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv);
napi_value cf_new_session_object(napi_env env, cf_session *s);

#endif
