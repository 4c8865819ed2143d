// trim(): returns the C heap's free pages to the operating system (glibc's malloc_trim(0)), true
// when any were returned. glibc keeps memory freed in the middle of its heap resident until then;
// a Herald process frees about 15 MB that way once start-up is over (the compile cache's buffers,
// docs/benchmarks.md). Other C libraries: a no-op answering false.
#include <node_api.h>
#include <stdbool.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#if defined(__GLIBC__)
  released = malloc_trim(0) != 0;
#endif
  napi_value result;
  napi_get_boolean(env, released, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
