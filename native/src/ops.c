/*
 * The reader thread: libfuse's lowlevel handlers and the device I/O.
 *
 * Every handler here runs on the one thread inside fuse_session_loop(). It
 * copies what JS needs out of the request (libfuse reuses its receive buffer
 * as soon as the handler returns) into one heap record and queues the record
 * to the JS thread without waiting. The reply comes later from JS.
 */
#include "session.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Device I/O                                                          */
/* ------------------------------------------------------------------ */

/*
 * All traffic goes through our own duplicate of the /dev/fuse descriptor.
 * fuse_session_unmount() closes libfuse's descriptor, possibly from the JS
 * thread while this thread is between two reads, and a late reply or
 * notification could then write to whatever file reused that number. Our
 * duplicate stays open until the session is destroyed, after every thread
 * that could use it is done.
 */
static ssize_t io_read (int fd, void *buf, size_t len, void *userdata)
{
  cf_session *s = userdata;
  (void)fd;
  /*
   * Forgets are collected into batches. Deliver a pending batch before
   * blocking: only while more requests are already waiting do we keep
   * collecting.
   */
  if (s->forgets != NULL) {
    struct pollfd p = { .fd = s->dev_fd, .events = POLLIN };
    if (poll(&p, 1, 0) == 0) cf_forgets_flush(s);
  }
  return read(s->dev_fd, buf, len);
}

static ssize_t io_writev (int fd, struct iovec *iov, int count, void *userdata)
{
  cf_session *s = userdata;
  (void)fd;
  ssize_t n = writev(s->dev_fd, iov, count);
  /*
   * ENODEV: the connection is gone (unmounted or aborted). The request we
   * answer no longer exists, which libfuse expects to hear as ENOENT (it
   * stays quiet about that one instead of printing an error per reply).
   */
  if (n < 0 && errno == ENODEV) errno = ENOENT;
  return n;
}

const struct fuse_custom_io cf_custom_io = {
  .read = io_read,
  .writev = io_writev,
};

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

static cf_record *rec_new (uint8_t op, fuse_req_t req, fuse_ino_t ino,
                           const char *name, const char *name2,
                           const void *data, size_t data_len)
{
  size_t n1 = name ? strlen(name) : 0;
  size_t n2 = name2 ? strlen(name2) : 0;
  size_t tail = (name ? n1 + 1 : 0) + (name2 ? n2 + 1 : 0) + data_len;
  cf_record *r = malloc(sizeof(*r) + tail);
  if (r == NULL) return NULL;
  memset(r, 0, sizeof(*r));
  r->op = op;
  r->req = req;
  r->ino = ino;
  char *p = r->tail;
  if (name) {
    memcpy(p, name, n1 + 1);
    r->name = p;
    r->name_len = (uint32_t)n1;
    p += n1 + 1;
  }
  if (name2) {
    memcpy(p, name2, n2 + 1);
    r->name2 = p;
    r->name2_len = (uint32_t)n2;
    p += n2 + 1;
  }
  if (data_len > 0) {
    memcpy(p, data, data_len);
    r->data = p;
    r->data_len = data_len;
  }
  return r;
}

static void rec_caller (cf_record *r, fuse_req_t req)
{
  const struct fuse_ctx *c = fuse_req_ctx(req);
  r->has_caller = true;
  r->caller.uid = c->uid;
  r->caller.gid = c->gid;
  r->caller.pid = (uint32_t)c->pid;
  r->caller.umask = c->umask;
}

static void rec_fh (cf_record *r, const struct fuse_file_info *fi)
{
  if (fi != NULL) {
    r->has_fh = true;
    r->fh = fi->fh;
  }
}

/*
 * Hand a record to the JS thread. Never blocks for long: the queue is
 * unbounded, and js_lock is only contended while the environment is torn
 * down (Node frees the queue then, so it must not be touched afterwards).
 */
static void queue (cf_session *s, cf_record *r)
{
  pthread_mutex_lock(&s->js_lock);
  napi_status st = s->js_gone ? napi_closing : napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking);
  pthread_mutex_unlock(&s->js_lock);
  if (st != napi_ok) {
    /* JS is going away (environment teardown): fail the request. */
    if (r->req != NULL) fuse_reply_err(r->req, ENOTCONN);
    cf_record_free(r);
  }
}

void cf_forgets_flush (cf_session *s)
{
  cf_record *r = s->forgets;
  s->forgets = NULL;
  if (r != NULL) queue(s, r);
}

/* Queue a request; forgets that came before it go first, to keep the order. */
static void send (cf_session *s, fuse_req_t req, cf_record *r)
{
  if (r == NULL) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  if (s->forgets != NULL) cf_forgets_flush(s);
  queue(s, r);
}

#define SESSION(req) ((cf_session *)fuse_req_userdata(req))

/* ------------------------------------------------------------------ */
/* Lowlevel handlers                                                   */
/* ------------------------------------------------------------------ */

static void op_init (void *userdata, struct fuse_conn_info *conn)
{
  cf_session *s = userdata;

  /*
   * libfuse has already capped max_write to its receive buffer (1 MiB plus
   * header when the kernel supports FUSE_MAX_PAGES) and derives max_pages
   * from max_write when it answers INIT, so lowering it is all we do here.
   */
  if (s->max_write < conn->max_write) conn->max_write = s->max_write;
  if (s->max_readahead < conn->max_readahead) conn->max_readahead = s->max_readahead;

  /*
   * Readdirplus and the writeback cache only when asked for; no NFS export
   * support; the kernel applies the umask (no DONT_MASK) and clears setuid
   * bits on write itself, through setattr (no HANDLE_KILLPRIV), so handlers
   * need not know about either.
   */
  unsigned want = conn->want;
  want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO |
                      FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_EXPORT_SUPPORT |
                      FUSE_CAP_DONT_MASK | FUSE_CAP_HANDLE_KILLPRIV);
  if (s->readdirplus) want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  if (s->writeback_cache) want |= FUSE_CAP_WRITEBACK_CACHE;
  want |= FUSE_CAP_ASYNC_READ | FUSE_CAP_ATOMIC_O_TRUNC;
  /* Asking for something the kernel cannot do makes libfuse refuse INIT. */
  conn->want = want & conn->capable;

  cf_record *r = rec_new(OP_INIT, NULL, 0, NULL, NULL, NULL, 0);
  if (r == NULL) return;
  r->init.proto_major = conn->proto_major;
  r->init.proto_minor = conn->proto_minor;
  r->init.max_write = conn->max_write;
  r->init.max_readahead = conn->max_readahead;
  r->init.capable = conn->capable;
  r->init.want = conn->want;
  queue(s, r);
}

static void op_lookup (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  send(SESSION(req), req, rec_new(OP_LOOKUP, req, parent, name, NULL, NULL, 0));
}

static void forget_add (cf_session *s, uint64_t ino, uint64_t nlookup)
{
  cf_record *r = s->forgets;
  if (r == NULL) {
    r = rec_new(OP_FORGET, NULL, 0, NULL, NULL, NULL, 0);
    if (r == NULL) return;
    r->pairs = malloc(sizeof(double) * 2 * CF_FORGET_BATCH);
    if (r->pairs == NULL) {
      cf_record_free(r);
      return;
    }
    s->forgets = r;
  }
  r->pairs[r->count * 2] = (double)ino;
  r->pairs[r->count * 2 + 1] = (double)nlookup;
  if (++r->count == CF_FORGET_BATCH) cf_forgets_flush(s);
}

static void op_forget (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  cf_session *s = SESSION(req);
  fuse_reply_none(req);
  forget_add(s, ino, nlookup);
}

static void op_forget_multi (fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
  cf_session *s = SESSION(req);
  for (size_t i = 0; i < count; i++) forget_add(s, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void op_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_GETATTR, req, ino, NULL, NULL, NULL, 0);
  if (r) rec_fh(r, fi);
  send(SESSION(req), req, r);
}

static void op_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                        int to_set, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_SETATTR, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->flags = (uint32_t)to_set;
    r->mode = attr->st_mode;
    r->uid = attr->st_uid;
    r->gid = attr->st_gid;
    r->size = (uint64_t)attr->st_size;
    r->atime = attr->st_atim.tv_sec;
    r->atime_ns = attr->st_atim.tv_nsec;
    r->mtime = attr->st_mtim.tv_sec;
    r->mtime_ns = attr->st_mtim.tv_nsec;
    rec_fh(r, fi);
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_readlink (fuse_req_t req, fuse_ino_t ino)
{
  send(SESSION(req), req, rec_new(OP_READLINK, req, ino, NULL, NULL, NULL, 0));
}

static void op_mknod (fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, dev_t rdev)
{
  cf_record *r = rec_new(OP_MKNOD, req, parent, name, NULL, NULL, 0);
  if (r) {
    r->mode = mode;
    r->size = rdev;
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
  cf_record *r = rec_new(OP_MKDIR, req, parent, name, NULL, NULL, 0);
  if (r) {
    r->mode = mode;
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_unlink (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  send(SESSION(req), req, rec_new(OP_UNLINK, req, parent, name, NULL, NULL, 0));
}

static void op_rmdir (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  send(SESSION(req), req, rec_new(OP_RMDIR, req, parent, name, NULL, NULL, 0));
}

static void op_symlink (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
  cf_record *r = rec_new(OP_SYMLINK, req, parent, name, link, NULL, 0);
  if (r) rec_caller(r, req);
  send(SESSION(req), req, r);
}

static void op_rename (fuse_req_t req, fuse_ino_t parent, const char *name,
                       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
  cf_record *r = rec_new(OP_RENAME, req, parent, name, newname, NULL, 0);
  if (r) {
    r->ino2 = newparent;
    r->flags = flags;
  }
  send(SESSION(req), req, r);
}

static void op_link (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
  cf_record *r = rec_new(OP_LINK, req, ino, newname, NULL, NULL, 0);
  if (r) r->ino2 = newparent;
  send(SESSION(req), req, r);
}

static void op_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_OPEN, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->flags = (uint32_t)fi->flags;
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_READ, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->size = size;
    r->off = (uint64_t)off;
    rec_fh(r, fi);
  }
  send(SESSION(req), req, r);
}

static void op_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                      off_t off, struct fuse_file_info *fi)
{
  /*
   * The data is copied here, once, into a block that JS then owns without a
   * second copy (see dispatch.c), because buf lives in libfuse's receive
   * buffer.
   */
  cf_record *r = rec_new(OP_WRITE, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->data = malloc(size > 0 ? size : 1);
    if (r->data == NULL) {
      cf_record_free(r);
      r = NULL;
    } else {
      memcpy(r->data, buf, size);
      r->data_len = size;
      r->data_owned = true;
      r->off = (uint64_t)off;
      r->flags = (uint32_t)fi->flags;
      rec_fh(r, fi);
      /* Who writes decides whether the setgid bit goes (see the client). */
      rec_caller(r, req);
    }
  }
  send(SESSION(req), req, r);
}

static void op_flush (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_FLUSH, req, ino, NULL, NULL, NULL, 0);
  if (r) rec_fh(r, fi);
  send(SESSION(req), req, r);
}

static void op_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_RELEASE, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->flags = (uint32_t)fi->flags;
    rec_fh(r, fi);
  }
  send(SESSION(req), req, r);
}

static void op_fsync (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_FSYNC, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->flag = datasync != 0;
    rec_fh(r, fi);
  }
  send(SESSION(req), req, r);
}

static void op_opendir (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_OPENDIR, req, ino, NULL, NULL, NULL, 0);
  if (r) r->flags = (uint32_t)fi->flags;
  send(SESSION(req), req, r);
}

static void readdir_common (uint8_t op, fuse_req_t req, fuse_ino_t ino, size_t size,
                            off_t off, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(op, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->size = size;
    r->off = (uint64_t)off;
    rec_fh(r, fi);
  }
  send(SESSION(req), req, r);
}

static void op_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
  readdir_common(OP_READDIR, req, ino, size, off, fi);
}

static void op_readdirplus (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                            struct fuse_file_info *fi)
{
  readdir_common(OP_READDIRPLUS, req, ino, size, off, fi);
}

static void op_releasedir (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_RELEASEDIR, req, ino, NULL, NULL, NULL, 0);
  if (r) rec_fh(r, fi);
  send(SESSION(req), req, r);
}

static void op_fsyncdir (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_FSYNCDIR, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->flag = datasync != 0;
    rec_fh(r, fi);
  }
  send(SESSION(req), req, r);
}

static void op_statfs (fuse_req_t req, fuse_ino_t ino)
{
  send(SESSION(req), req, rec_new(OP_STATFS, req, ino, NULL, NULL, NULL, 0));
}

static void op_setxattr (fuse_req_t req, fuse_ino_t ino, const char *name,
                         const char *value, size_t size, int flags)
{
  cf_record *r = rec_new(OP_SETXATTR, req, ino, name, NULL, value, size);
  if (r) r->flags = (uint32_t)flags;
  send(SESSION(req), req, r);
}

static void op_getxattr (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
  cf_record *r = rec_new(OP_GETXATTR, req, ino, name, NULL, NULL, 0);
  if (r) r->size = size;
  send(SESSION(req), req, r);
}

static void op_listxattr (fuse_req_t req, fuse_ino_t ino, size_t size)
{
  cf_record *r = rec_new(OP_LISTXATTR, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->size = size;
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_removexattr (fuse_req_t req, fuse_ino_t ino, const char *name)
{
  send(SESSION(req), req, rec_new(OP_REMOVEXATTR, req, ino, name, NULL, NULL, 0));
}

static void op_access (fuse_req_t req, fuse_ino_t ino, int mask)
{
  cf_record *r = rec_new(OP_ACCESS, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->flags = (uint32_t)mask;
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_create (fuse_req_t req, fuse_ino_t parent, const char *name,
                       mode_t mode, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_CREATE, req, parent, name, NULL, NULL, 0);
  if (r) {
    r->mode = mode;
    r->flags = (uint32_t)fi->flags;
    rec_caller(r, req);
  }
  send(SESSION(req), req, r);
}

static void op_fallocate (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
                          off_t length, struct fuse_file_info *fi)
{
  cf_record *r = rec_new(OP_FALLOCATE, req, ino, NULL, NULL, NULL, 0);
  if (r) {
    r->mode = (uint32_t)mode;
    r->off = (uint64_t)offset;
    r->size = (uint64_t)length;
    rec_fh(r, fi);
  }
  send(SESSION(req), req, r);
}

/*
 * Register only the operations JS implements: for the others libfuse's
 * defaults apply (ENOSYS, which the kernel remembers for most of them, or
 * plain success for open/opendir/release/releasedir/forget).
 */
void cf_ops_fill (struct fuse_lowlevel_ops *ops, const cf_session *s)
{
  memset(ops, 0, sizeof(*ops));
  ops->init = op_init;
#define HAS(op) (s->fn[op] != NULL)
  if (HAS(OP_LOOKUP)) ops->lookup = op_lookup;
  if (HAS(OP_FORGET)) {
    ops->forget = op_forget;
    ops->forget_multi = op_forget_multi;
  }
  if (HAS(OP_GETATTR)) ops->getattr = op_getattr;
  if (HAS(OP_SETATTR)) ops->setattr = op_setattr;
  if (HAS(OP_READLINK)) ops->readlink = op_readlink;
  if (HAS(OP_MKNOD)) ops->mknod = op_mknod;
  if (HAS(OP_MKDIR)) ops->mkdir = op_mkdir;
  if (HAS(OP_UNLINK)) ops->unlink = op_unlink;
  if (HAS(OP_RMDIR)) ops->rmdir = op_rmdir;
  if (HAS(OP_SYMLINK)) ops->symlink = op_symlink;
  if (HAS(OP_RENAME)) ops->rename = op_rename;
  if (HAS(OP_LINK)) ops->link = op_link;
  if (HAS(OP_OPEN)) ops->open = op_open;
  if (HAS(OP_READ)) ops->read = op_read;
  if (HAS(OP_WRITE)) ops->write = op_write;
  if (HAS(OP_FLUSH)) ops->flush = op_flush;
  if (HAS(OP_RELEASE)) ops->release = op_release;
  if (HAS(OP_FSYNC)) ops->fsync = op_fsync;
  if (HAS(OP_OPENDIR)) ops->opendir = op_opendir;
  if (HAS(OP_READDIR)) ops->readdir = op_readdir;
  if (HAS(OP_READDIRPLUS) && s->readdirplus) ops->readdirplus = op_readdirplus;
  if (HAS(OP_RELEASEDIR)) ops->releasedir = op_releasedir;
  if (HAS(OP_FSYNCDIR)) ops->fsyncdir = op_fsyncdir;
  if (HAS(OP_STATFS)) ops->statfs = op_statfs;
  if (HAS(OP_SETXATTR)) ops->setxattr = op_setxattr;
  if (HAS(OP_GETXATTR)) ops->getxattr = op_getxattr;
  if (HAS(OP_LISTXATTR)) ops->listxattr = op_listxattr;
  if (HAS(OP_REMOVEXATTR)) ops->removexattr = op_removexattr;
  if (HAS(OP_ACCESS)) ops->access = op_access;
  if (HAS(OP_CREATE)) ops->create = op_create;
  if (HAS(OP_FALLOCATE)) ops->fallocate = op_fallocate;
#undef HAS
}

/* ------------------------------------------------------------------ */
/* The reader thread                                                   */
/* ------------------------------------------------------------------ */

void *cf_reader_main (void *arg)
{
  cf_session *s = arg;

  /* Signals are for the JS thread; read() restarts on EINTR anyway. */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);

  fuse_session_loop(s->se);

  /*
   * The loop ends when the kernel closes the connection (umount from outside,
   * fusermount3 -u, an abort through fusectl) or after unmount() called
   * fuse_session_exit(). Make sure the mount is gone and libfuse's descriptor
   * closed; when unmount() already did this it is a no-op.
   */
  pthread_mutex_lock(&s->unmount_lock);
  fuse_session_unmount(s->se);
  pthread_mutex_unlock(&s->unmount_lock);

  cf_forgets_flush(s);

  pthread_mutex_lock(&s->js_lock);
  if (!s->js_gone) {
    cf_record *r = rec_new(OP_EXIT, NULL, 0, NULL, NULL, NULL, 0);
    if (r != NULL && napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking) != napi_ok) {
      cf_record_free(r);
    }
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  }
  pthread_mutex_unlock(&s->js_lock);
  cf_session_unref(s);
  return NULL;
}
