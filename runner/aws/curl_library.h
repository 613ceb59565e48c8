// libcurl, loaded when the first HTTP client is made rather than linked: a runner that sends
// no request (a build of shell steps, `validate`, `plan`, and the `runner __step` of a kind that
// sends none) does not map libcurl and the 18 libraries only it brings: `runner --version` went
// from 6.5 to 5.4 ms here.
#pragma once

#include <curl/curl.h>

#include "runner/result.h"

namespace runner::aws {

// The entry points the HTTP client calls, named as libcurl names them without `curl_`.
struct CurlLibrary {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_reset) easy_reset;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

// Loaded and initialized (curl_global_init) once per process; safe from any thread. Fails
// naming the library and why it could not be loaded.
Result<const CurlLibrary*> LoadCurlLibrary();

}  // namespace runner::aws
