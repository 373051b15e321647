/*
 * Kernel cache invalidation, sent from a thread of its own.
 *
 * fuse_lowlevel_notify_inval_entry() takes the parent directory's lock in
 * the kernel. If a request on that directory is waiting for a reply from JS,
 * the notification waits too; done on the JS thread that would never end.
 * So JS only queues the notice here and returns at once.
 */
#include "session.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void *notify_main (void *arg)
{
  cf_session *s = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);

  pthread_mutex_lock(&s->nlock);
  for (;;) {
    while (s->nhead == NULL && !s->nstop) pthread_cond_wait(&s->ncond, &s->nlock);
    if (s->nstop) break;
    cf_notice *n = s->nhead;
    s->nhead = n->next;
    if (s->nhead == NULL) s->ntail = NULL;
    pthread_mutex_unlock(&s->nlock);

    /* Errors (ENOENT: not cached, ENOSYS: before init) need no action. */
    if (n->entry) {
      fuse_lowlevel_notify_inval_entry(s->se, n->ino, n->name, n->name_len);
    } else {
      fuse_lowlevel_notify_inval_inode(s->se, n->ino, n->off, n->len);
    }
    free(n);
    pthread_mutex_lock(&s->nlock);
  }
  /* The session ended: what is still queued no longer matters. */
  while (s->nhead != NULL) {
    cf_notice *n = s->nhead;
    s->nhead = n->next;
    free(n);
  }
  s->ntail = NULL;
  pthread_mutex_unlock(&s->nlock);

  cf_teardown_step(s);
  return NULL;
}

int cf_notify_start (cf_session *s)
{
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&t, &attr, notify_main, s);
  pthread_attr_destroy(&attr);
  return err;
}

/* Ask the thread to finish; it destroys the session if it is the last user. */
void cf_notify_stop (cf_session *s)
{
  pthread_mutex_lock(&s->nlock);
  s->nstop = true;
  pthread_cond_signal(&s->ncond);
  pthread_mutex_unlock(&s->nlock);
}

static void push (cf_session *s, cf_notice *n)
{
  n->next = NULL;
  pthread_mutex_lock(&s->nlock);
  if (s->nstop) {
    free(n);
  } else {
    if (s->ntail != NULL) s->ntail->next = n;
    else s->nhead = n;
    s->ntail = n;
    pthread_cond_signal(&s->ncond);
  }
  pthread_mutex_unlock(&s->nlock);
}

napi_value cf_notify_inval_entry (napi_env env, napi_callback_info info)
{
  size_t argc = 2;
  napi_value argv[2];
  cf_session *s = cf_session_of(env, info, &argc, argv);
  if (s == NULL) return NULL;
  double parent;
  size_t len;
  if (argc < 2 || napi_get_value_double(env, argv[0], &parent) != napi_ok ||
      napi_get_value_string_latin1(env, argv[1], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "notifyInvalEntry(parent: number, name: string)");
    return NULL;
  }
  if (s->ended || !(parent > 0)) return NULL;
  cf_notice *n = malloc(sizeof(*n) + len + 1);
  if (n == NULL) return NULL;
  n->entry = true;
  n->ino = (uint64_t)parent;
  n->off = n->len = 0;
  napi_get_value_string_latin1(env, argv[1], n->name, len + 1, &n->name_len);
  push(s, n);
  return NULL;
}

napi_value cf_notify_inval_inode (napi_env env, napi_callback_info info)
{
  size_t argc = 3;
  napi_value argv[3];
  cf_session *s = cf_session_of(env, info, &argc, argv);
  if (s == NULL) return NULL;
  double ino, off, len;
  if (argc < 3 || napi_get_value_double(env, argv[0], &ino) != napi_ok ||
      napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "notifyInvalInode(ino: number, offset: number, length: number)");
    return NULL;
  }
  if (s->ended || !(ino > 0)) return NULL;
  cf_notice *n = malloc(sizeof(*n));
  if (n == NULL) return NULL;
  n->entry = false;
  n->ino = (uint64_t)ino;
  /* offset < 0: only attributes; length 0: up to the end (kernel semantics). */
  n->off = off < 0 ? -1 : (int64_t)off;
  n->len = len > 0 ? (int64_t)len : 0;
  n->name_len = 0;
  push(s, n);
  return NULL;
}
