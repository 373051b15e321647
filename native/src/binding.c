/*
 * cudele_fuse: N-API binding to libfuse3's lowlevel API.
 *
 * Module set-up and the Session class. The contract is src/fuse/native.ts.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

cf_module *cf_module_of (napi_env env)
{
  cf_module *m = NULL;
  napi_get_instance_data(env, (void **)&m);
  return m;
}

/* `this` of a Session method, with the arguments. Throws when it is not a Session. */
cf_session *cf_session_of (napi_env env, napi_callback_info info, size_t *argc, napi_value *argv)
{
  napi_value self;
  void *p = NULL;
  size_t none = 0;
  if (napi_get_cb_info(env, info, argc ? argc : &none, argv, &self, NULL) != napi_ok ||
      napi_unwrap(env, self, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "not a Session (call it as session.method(...))");
    return NULL;
  }
  return p;
}

/* Only mount() makes Sessions. */
static napi_value session_ctor (napi_env env, napi_callback_info info)
{
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  cf_module *m = cf_module_of(env);
  if (m == NULL || !m->constructing) {
    napi_throw_type_error(env, NULL, "Session objects are made by mount()");
    return NULL;
  }
  return self;
}

static void session_finalize (napi_env env, void *data, void *hint)
{
  (void)env;
  (void)hint;
  cf_session_unref(data);
}

napi_value cf_new_session_object (napi_env env, cf_session *s)
{
  cf_module *m = cf_module_of(env);
  napi_value ctor, obj = NULL;
  if (napi_get_reference_value(env, m->session_ctor, &ctor) != napi_ok) return NULL;
  m->constructing = true;
  napi_status st = napi_new_instance(env, ctor, 0, NULL, &obj);
  m->constructing = false;
  if (st != napi_ok) return NULL;
  if (napi_wrap(env, obj, s, session_finalize, NULL, NULL) != napi_ok) return NULL;
  return obj;
}

static void module_finalize (napi_env env, void *data, void *hint)
{
  (void)env;
  (void)hint;
  free(data);
}

#define METHOD(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_default, NULL }

static napi_value init (napi_env env, napi_value exports)
{
  cf_module *m = calloc(1, sizeof(*m));
  if (m == NULL) return NULL;
  if (napi_set_instance_data(env, m, module_finalize, NULL) != napi_ok) {
    free(m);
    return NULL;
  }
  cf_install_log();

  napi_property_descriptor props[24];
  size_t n = 0;
  props[n++] = (napi_property_descriptor)METHOD("unmount", cf_unmount);
  props[n++] = (napi_property_descriptor)METHOD("notifyInvalEntry", cf_notify_inval_entry);
  props[n++] = (napi_property_descriptor)METHOD("notifyInvalInode", cf_notify_inval_inode);
  cf_define_replies(env, props, &n);

  napi_value ctor;
  if (napi_define_class(env, "Session", NAPI_AUTO_LENGTH, session_ctor, NULL, n, props, &ctor) != napi_ok ||
      napi_create_reference(env, ctor, 1, &m->session_ctor) != napi_ok) {
    return NULL;
  }

  napi_property_descriptor exported[] = {
    { "mount", NULL, cf_mount, NULL, NULL, NULL, napi_enumerable, NULL },
    { "xattrGet", NULL, cf_xattr_get, NULL, NULL, NULL, napi_enumerable, NULL },
    { "xattrSet", NULL, cf_xattr_set, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof(exported) / sizeof(exported[0]), exported);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
