// libcurl, loaded when the first HTTP client is made rather than linked: a runner that sends
// no request (a build of shell steps, `validate`, `plan`, and the `runner __step` of a kind that
// sends none) does not map libcurl and the 18 libraries only it brings: `runner --version` went
// from 6.5 to 5.4 ms here.
#pragma once

#include <curl/curl.h>

#include "runner/result.h"

namespace runner::aws {

// The entry points the HTTP client calls, named as libcurl names them without `curl_`.
#define RUNNER_CURL_ENTRY_POINTS(X) \
  X(global_init)                    \
  X(easy_init)                      \
  X(easy_setopt)                    \
  X(easy_perform)                   \
  X(easy_getinfo)                   \
  X(easy_reset)                     \
  X(easy_cleanup)                   \
  X(easy_strerror)                  \
  X(slist_append)                   \
  X(slist_free_all)

struct CurlLibrary {
#define RUNNER_CURL_ENTRY_POINT(name) decltype(&::curl_##name) name;
  RUNNER_CURL_ENTRY_POINTS(RUNNER_CURL_ENTRY_POINT)
#undef RUNNER_CURL_ENTRY_POINT
};

// Loaded and initialized (curl_global_init) once per process; safe from any thread. Fails
// naming the library and why it could not be loaded.
Result<const CurlLibrary*> LoadCurlLibrary();

}  // namespace runner::aws
