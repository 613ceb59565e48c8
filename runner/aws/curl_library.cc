#include "runner/aws/curl_library.h"

#include <string>

#include "runner/lazy_library.h"

namespace runner::aws {

namespace {

// libcurl's ABI has been soname 4 since 7.16 (2006); the version built against is the floor.
constexpr const char* kLibrary = "libcurl.so.4";

Result<CurlLibrary> Load() {
  Result<CurlLibrary> library = LoadLazyLibrary<CurlLibrary>(
      kLibrary, "libcurl4", [](SymbolBinder& binder, CurlLibrary& curl) {
#define RUNNER_CURL_BIND(name) binder.Bind(curl.name, "curl_" #name);
        RUNNER_CURL_ENTRY_POINTS(RUNNER_CURL_BIND)
#undef RUNNER_CURL_BIND
      });
  if (!library) return library;
  if (CURLcode code = library->global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
    return Fail(std::string("cannot initialize ") + kLibrary + ": " + library->easy_strerror(code));
  }
  return library;
}

}  // namespace

Result<const CurlLibrary*> LoadCurlLibrary() {
  static const Result<CurlLibrary> library = Load();  // once, also when it failed
  if (!library) return Fail(library.error());
  return &*library;
}

}  // namespace runner::aws
