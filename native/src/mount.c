/*
 * mount() and unmount().
 *
 * mount() checks the mountpoint itself first, so that the common mistakes
 * come back as a JS Error with a plain message and an errno code instead of
 * a line libfuse printed to stderr. The checks never touch a path inside an
 * existing mount of ours: a synchronous stat on our own mount from the JS
 * thread would wait forever for the JS thread.
 */
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

/* ------------------------------------------------------------------ */
/* libfuse's messages                                                  */
/* ------------------------------------------------------------------ */

/*
 * While mount() runs, libfuse's log lines are collected (per thread) to
 * explain a failure in the Error; at any other time they go to stderr.
 */
static __thread char *captured;
static __thread size_t captured_len;
static __thread bool capturing;

static void log_func (enum fuse_log_level level, const char *fmt, va_list ap)
{
  (void)level;
  if (!capturing) {
    vfprintf(stderr, fmt, ap);
    return;
  }
  char line[512];
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  if (n <= 0) return;
  if ((size_t)n >= sizeof(line)) n = sizeof(line) - 1;
  char *p = realloc(captured, captured_len + (size_t)n + 1);
  if (p == NULL) return;
  memcpy(p + captured_len, line, (size_t)n + 1);
  captured = p;
  captured_len += (size_t)n;
}

void cf_install_log (void)
{
  fuse_set_log_func(log_func);
}

static void capture_begin (void)
{
  free(captured);
  captured = NULL;
  captured_len = 0;
  capturing = true;
}

/* The collected text as one line without libfuse's "fuse: " prefixes. */
static const char *capture_end (void)
{
  capturing = false;
  if (captured == NULL) return "";
  char *w = captured;
  for (char *r = captured; *r; ) {
    if (strncmp(r, "fuse: ", 6) == 0 && (r == captured || r[-1] == '\n')) {
      r += 6;
      continue;
    }
    *w++ = *r == '\n' ? ' ' : *r;
    r++;
  }
  *w = 0;
  while (w > captured && w[-1] == ' ') *--w = 0;
  return captured;
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static const char *errno_code (int e)
{
  switch (e) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENODEV: return "ENODEV";
    case ENOTCONN: return "ENOTCONN";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    default: return "EIO";
  }
}

/* Throw Error(message) with code, errno (negative, like Node's), syscall, path. */
static void throw_mount_error (napi_env env, int e, const char *path, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  napi_value m, c, err, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &err);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, "mount", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "path", v);
  napi_throw(env, err);
}

/* ------------------------------------------------------------------ */
/* Mountpoint checks                                                   */
/* ------------------------------------------------------------------ */

/* Absolute, with ".", ".." and repeated slashes resolved textually. */
static char *absolute_path (const char *p)
{
  char cwd[PATH_MAX];
  size_t n = strlen(p);
  char *joined;
  if (p[0] == '/') {
    joined = strdup(p);
  } else {
    if (getcwd(cwd, sizeof(cwd)) == NULL) return NULL;
    joined = malloc(strlen(cwd) + n + 2);
    if (joined) sprintf(joined, "%s/%s", cwd, p);
  }
  if (joined == NULL) return NULL;
  char *out = malloc(strlen(joined) + 2);
  if (out == NULL) {
    free(joined);
    return NULL;
  }
  size_t len = 0;
  char *save = NULL;
  for (char *part = strtok_r(joined, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
    if (strcmp(part, ".") == 0) continue;
    if (strcmp(part, "..") == 0) {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--;
      continue;
    }
    out[len++] = '/';
    size_t pl = strlen(part);
    memcpy(out + len, part, pl);
    len += pl;
  }
  if (len == 0) out[len++] = '/';
  out[len] = 0;
  free(joined);
  return out;
}

/* /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal (char *s)
{
  char *w = s;
  for (char *r = s; *r; ) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
      r += 4;
    } else {
      *w++ = *r++;
    }
  }
  *w = 0;
}

/* Is path a mount point? Reads the mount table, never the path itself. */
static bool is_mount_point (const char *path)
{
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) return false;
  char *line = NULL;
  size_t cap = 0;
  bool found = false;
  while (!found && getline(&line, &cap, f) > 0) {
    /* id parent major:minor root mountpoint ... */
    char *save = NULL;
    char *field = strtok_r(line, " ", &save);
    for (int i = 0; field != NULL && i < 4; i++) field = strtok_r(NULL, " ", &save);
    if (field == NULL) continue;
    unescape_octal(field);
    found = strcmp(field, path) == 0;
  }
  free(line);
  fclose(f);
  return found;
}

static bool check_mountpoint (napi_env env, const char *given, const char *abs)
{
  if (is_mount_point(abs)) {
    throw_mount_error(env, EBUSY, given, "cannot mount on %s: it is already a mount point (already mounted?)", given);
    return false;
  }
  struct stat st;
  if (stat(abs, &st) != 0) {
    int e = errno;
    switch (e) {
      case ENOENT:
        throw_mount_error(env, e, given, "cannot mount on %s: the mountpoint does not exist", given);
        break;
      case ENOTCONN:
        throw_mount_error(env, e, given,
                          "cannot mount on %s: a path to it is a FUSE mount whose server is gone "
                          "(unmount it with umount -l or fusermount3 -uz)", given);
        break;
      case EACCES:
        throw_mount_error(env, e, given, "cannot mount on %s: permission denied while looking it up", given);
        break;
      default:
        throw_mount_error(env, e, given, "cannot mount on %s: %s", given, strerror(e));
    }
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    throw_mount_error(env, ENOTDIR, given, "cannot mount on %s: not a directory", given);
    return false;
  }
  if (access("/dev/fuse", F_OK) != 0) {
    throw_mount_error(env, ENODEV, given,
                      "cannot mount on %s: /dev/fuse is missing, the kernel has no FUSE support here "
                      "(try: modprobe fuse)", given);
    return false;
  }
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    throw_mount_error(env, EACCES, given, "cannot mount on %s: no permission to open /dev/fuse", given);
    return false;
  }
  return true;
}

/* A failed fuse_session_mount(): explain it with libfuse's own words. */
static void throw_libfuse_failure (napi_env env, const char *given, int saved_errno, const char *log)
{
  int e = saved_errno;
  if (strstr(log, "ermission denied")) e = EACCES;
  else if (strstr(log, "not permitted") || strstr(log, "only allowed if")) e = EPERM;
  else if (strstr(log, "busy")) e = EBUSY;
  else if (strstr(log, "No such device") || strstr(log, "device not found")) e = ENODEV;
  else if (strstr(log, "failed to exec")) e = ENOENT;
  else if (e == 0) e = EIO;
  if (*log) {
    throw_mount_error(env, e, given, "cannot mount on %s: %s", given, log);
  } else {
    throw_mount_error(env, e, given, "cannot mount on %s: %s (see stderr for details)", given, strerror(e));
  }
}

/* ------------------------------------------------------------------ */
/* Descriptors                                                         */
/* ------------------------------------------------------------------ */

typedef struct { int *fds; size_t n; } fd_list;

static void list_fds (fd_list *l)
{
  l->fds = NULL;
  l->n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  size_t cap = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL; ) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (l->n == cap) {
      cap = cap ? cap * 2 : 64;
      int *p = realloc(l->fds, cap * sizeof(int));
      if (p == NULL) break;
      l->fds = p;
    }
    l->fds[l->n++] = atoi(e->d_name);
  }
  closedir(d);
}

/*
 * With auto_unmount, libfuse keeps a socket to the fusermount3 process that
 * unmounts when this process dies; it is created without close-on-exec. A
 * child that inherits it would keep the mount alive after a crash, so mark
 * the sockets that appeared during the mount close-on-exec.
 */
static void cloexec_new_sockets (const fd_list *before)
{
  fd_list after;
  list_fds(&after);
  for (size_t i = 0; i < after.n; i++) {
    int fd = after.fds[i];
    bool old = false;
    for (size_t j = 0; j < before->n && !old; j++) old = before->fds[j] == fd;
    if (old) continue;
    struct stat st;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC) && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
      fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
  }
  free(after.fds);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static bool get_prop (napi_env env, napi_value obj, const char *name, napi_value *out)
{
  bool has;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return false;
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok ||
      t == napi_undefined || t == napi_null) {
    return false;
  }
  *out = v;
  return true;
}

static bool opt_bool (napi_env env, napi_value opts, const char *name)
{
  napi_value v;
  bool b = false;
  if (get_prop(env, opts, name, &v)) napi_coerce_to_bool(env, v, &v), napi_get_value_bool(env, v, &b);
  return b;
}

static uint32_t opt_size (napi_env env, napi_value opts, const char *name, uint32_t dflt, uint32_t min, uint32_t max)
{
  napi_value v;
  double d;
  if (!get_prop(env, opts, name, &v) || napi_get_value_double(env, v, &d) != napi_ok || !(d > 0)) return dflt;
  if (d < min) return min;
  if (d > max) return max;
  return (uint32_t)d;
}

/*
 * "-o" arguments from opts.options, one element per option. libfuse splits
 * option lists on commas, so commas and backslashes inside an option are
 * escaped to keep each element whole.
 */
static bool build_args (napi_env env, napi_value opts, struct fuse_args *args)
{
  if (fuse_opt_add_arg(args, "cudele") != 0) return false;
  napi_value list;
  bool is_array = false;
  if (!get_prop(env, opts, "options", &list)) return true;
  if (napi_is_array(env, list, &is_array) != napi_ok || !is_array) return false;
  uint32_t n;
  napi_get_array_length(env, list, &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    size_t len;
    if (napi_get_element(env, list, i, &el) != napi_ok ||
        napi_get_value_string_utf8(env, el, NULL, 0, &len) != napi_ok) {
      return false;
    }
    if (len == 0) continue;
    char *raw = malloc(len + 1);
    char *esc = malloc(len * 2 + 1);
    if (raw == NULL || esc == NULL) {
      free(raw);
      free(esc);
      return false;
    }
    napi_get_value_string_utf8(env, el, raw, len + 1, &len);
    char *w = esc;
    for (size_t j = 0; j < len; j++) {
      if (raw[j] == ',' || raw[j] == '\\') *w++ = '\\';
      *w++ = raw[j];
    }
    *w = 0;
    bool ok = fuse_opt_add_arg(args, "-o") == 0 && fuse_opt_add_arg(args, esc) == 0;
    free(raw);
    free(esc);
    if (!ok) return false;
  }
  return true;
}

/* ------------------------------------------------------------------ */
/* mount()                                                             */
/* ------------------------------------------------------------------ */

static bool lookup_handlers (napi_env env, cf_session *s, napi_value handlers)
{
  if (napi_create_reference(env, handlers, 1, &s->handlers) != napi_ok) return false;
  for (int i = 0; i < OP_COUNT; i++) {
    napi_value fn;
    napi_valuetype t;
    if (napi_get_named_property(env, handlers, cf_op_names[i], &fn) != napi_ok) return false;
    if (napi_typeof(env, fn, &t) == napi_ok && t == napi_function) {
      if (napi_create_reference(env, fn, 1, &s->fn[i]) != napi_ok) return false;
    }
  }
  return true;
}

static void drop_js_refs (napi_env env, cf_session *s)
{
  for (int i = 0; i < OP_COUNT; i++) {
    if (s->fn[i] != NULL) napi_delete_reference(env, s->fn[i]);
    s->fn[i] = NULL;
  }
  if (s->handlers != NULL) napi_delete_reference(env, s->handlers);
  if (s->attr != NULL) napi_delete_reference(env, s->attr);
  s->handlers = NULL;
  s->attr = NULL;
}

static bool is_attr_array (napi_env env, napi_value v)
{
  bool is;
  napi_typedarray_type type;
  size_t len;
  return napi_is_typedarray(env, v, &is) == napi_ok && is &&
         napi_get_typedarray_info(env, v, &type, &len, NULL, NULL, NULL) == napi_ok &&
         type == napi_float64_array && len >= ATTR_LENGTH;
}

napi_value cf_mount (napi_env env, napi_callback_info info)
{
  size_t argc = 4;
  napi_value argv[4];
  napi_valuetype t0, t1, t2;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || napi_typeof(env, argv[0], &t0) != napi_ok || t0 != napi_string ||
      napi_typeof(env, argv[1], &t1) != napi_ok || t1 != napi_object ||
      napi_typeof(env, argv[2], &t2) != napi_ok || t2 != napi_object || !is_attr_array(env, argv[3])) {
    napi_throw_type_error(env, NULL,
                          "mount(mountpoint: string, opts: MountOptions, handlers: Handlers, attr: Float64Array(16))");
    return NULL;
  }

  char given[PATH_MAX];
  size_t given_len;
  napi_get_value_string_utf8(env, argv[0], given, sizeof(given), &given_len);
  if (given_len == 0 || given_len >= sizeof(given) - 1) {
    napi_throw_type_error(env, NULL, "mount: bad mountpoint");
    return NULL;
  }
  char *abs = absolute_path(given);
  if (abs == NULL) {
    throw_mount_error(env, errno ? errno : ENOMEM, given, "cannot mount on %s: %s", given, strerror(errno ? errno : ENOMEM));
    return NULL;
  }
  if (!check_mountpoint(env, given, abs)) {
    free(abs);
    return NULL;
  }

  cf_session *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    free(abs);
    napi_throw_error(env, "ENOMEM", "mount: out of memory");
    return NULL;
  }
  s->mountpoint = abs;
  s->lib_fd = s->dev_fd = -1;
  s->free_head = UINT32_MAX;
  pthread_mutex_init(&s->unmount_lock, NULL);
  pthread_mutex_init(&s->js_lock, NULL);
  pthread_mutex_init(&s->nlock, NULL);
  pthread_cond_init(&s->ncond, NULL);
  /* The JS object holds one reference until it is collected. */
  atomic_init(&s->refs, 1);
  atomic_init(&s->teardown_waits, 2);
  s->max_write = opt_size(env, argv[1], "maxWrite", MIB, 4096, MIB);
  s->max_readahead = opt_size(env, argv[1], "maxReadahead", MIB, 0, UINT32_MAX);
  s->readdirplus = opt_bool(env, argv[1], "readdirplus");
  s->writeback_cache = opt_bool(env, argv[1], "writebackCache");

  napi_value session = cf_new_session_object(env, s);
  if (session == NULL) {
    cf_session_unref(s);
    return NULL;
  }
  if (!lookup_handlers(env, s, argv[2]) || napi_create_reference(env, argv[3], 1, &s->attr) != napi_ok) {
    drop_js_refs(env, s);
    napi_throw_error(env, NULL, "mount: cannot read the handlers object");
    return NULL;
  }

  struct fuse_lowlevel_ops ops;
  cf_ops_fill(&ops, s);
  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  if (!build_args(env, argv[1], &args)) {
    fuse_opt_free_args(&args);
    drop_js_refs(env, s);
    napi_throw_type_error(env, NULL, "mount: opts.options must be an array of strings");
    return NULL;
  }

  capture_begin();
  s->se = fuse_session_new(&args, &ops, sizeof(ops), s);
  fuse_opt_free_args(&args);
  if (s->se == NULL) {
    const char *log = capture_end();
    drop_js_refs(env, s);
    throw_mount_error(env, EINVAL, given, "cannot mount on %s: bad mount options: %s", given,
                      *log ? log : "rejected by libfuse");
    return NULL;
  }

  fd_list before;
  list_fds(&before);
  errno = 0;
  int rc = fuse_session_mount(s->se, abs);
  int saved_errno = errno;
  const char *log = capture_end();
  if (rc != 0) {
    free(before.fds);
    fuse_session_destroy(s->se);
    s->se = NULL;
    drop_js_refs(env, s);
    throw_libfuse_failure(env, given, saved_errno, log);
    return NULL;
  }
  cloexec_new_sockets(&before);
  free(before.fds);

  s->lib_fd = fuse_session_fd(s->se);
  s->dev_fd = fcntl(s->lib_fd, F_DUPFD_CLOEXEC, 3);
  napi_value name;
  napi_create_string_utf8(env, "cudele_fuse", NAPI_AUTO_LENGTH, &name);
  if (s->dev_fd < 0 || fuse_session_custom_io(s->se, &cf_custom_io, s->lib_fd) != 0 ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, s, cf_tsfn_finalize, s,
                                      cf_call_js, &s->tsfn) != napi_ok) {
    int e = errno ? errno : ENOMEM;
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    s->se = NULL;
    if (s->dev_fd >= 0) close(s->dev_fd);
    s->dev_fd = -1;
    drop_js_refs(env, s);
    throw_mount_error(env, e, given, "cannot mount on %s: %s", given, strerror(e));
    return NULL;
  }
  /*
   * From here the session lives until exit: references for the live
   * fuse_session (dropped at destroy), the queue (dropped in its finalizer)
   * and the reader thread (dropped when it returns).
   */
  atomic_fetch_add(&s->refs, 3);
  /* Registered after the queue, so it runs before Node tears the queue down. */
  napi_add_env_cleanup_hook(env, cf_session_env_cleanup, s);

  napi_value fd;
  napi_create_int32(env, s->lib_fd, &fd);
  napi_property_descriptor p = { "fd", NULL, NULL, NULL, NULL, fd, napi_enumerable, NULL };
  napi_define_properties(env, session, 1, &p);

  pthread_t reader;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = cf_notify_start(s);
  if (err != 0) {
    /* No notify thread: count its part of the teardown as done. */
    atomic_fetch_sub(&s->teardown_waits, 1);
    s->nstop = true;
  }
  if (err == 0) err = pthread_create(&reader, &attr, cf_reader_main, s);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    /*
     * No reader: unmount, and play the reader's part of the ending here so
     * that exit is delivered and everything is released the usual way.
     */
    cf_unmount_session(s);
    cf_session_unref(s); /* the reader's reference */
    cf_record *r = calloc(1, sizeof(*r));
    if (r != NULL) {
      r->op = OP_EXIT;
      napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking);
    }
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
    throw_mount_error(env, err, given, "cannot mount on %s: cannot start a thread: %s", given, strerror(err));
    return NULL;
  }
  return session;
}

/* ------------------------------------------------------------------ */
/* unmount()                                                           */
/* ------------------------------------------------------------------ */

/*
 * Stop the loop and detach the mount (lazily: processes still inside keep
 * what they have open). Unless something still uses the filesystem, the
 * kernel then fails the reader's read() with ENODEV, the loop returns, and
 * exit follows through the queue. Nothing here waits for the reader thread.
 */
void cf_unmount_session (cf_session *s)
{
  if (s->unmount_called || s->ended) return;
  s->unmount_called = true;
  fuse_session_exit(s->se);
  pthread_mutex_lock(&s->unmount_lock);
  fuse_session_unmount(s->se);
  pthread_mutex_unlock(&s->unmount_lock);
}

/*
 * The JS environment is going away (process exit, worker termination) with
 * the session still running: stop using the queue, which Node is about to
 * free, and unmount. The session itself is left to the process's end.
 */
void cf_session_env_cleanup (void *arg)
{
  cf_session *s = arg;
  pthread_mutex_lock(&s->js_lock);
  s->js_gone = true;
  pthread_mutex_unlock(&s->js_lock);
  cf_unmount_session(s);
}

napi_value cf_unmount (napi_env env, napi_callback_info info)
{
  size_t argc = 0;
  cf_session *s = cf_session_of(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  cf_unmount_session(s);
  return NULL;
}
