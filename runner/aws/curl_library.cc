#include "runner/aws/curl_library.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace runner::aws {

namespace {

// libcurl's ABI has been soname 4 since 7.16 (2006); the version built against is the floor.
constexpr const char* kLibrary = "libcurl.so.4";

Result<CurlLibrary> Load() {
  // Lazily bound, as a linked library is: the entry points resolve as they are first called.
  void* handle = ::dlopen(kLibrary, RTLD_LAZY | RTLD_LOCAL);
  if (handle == nullptr) {
    return Fail(std::string("cannot load ") + kLibrary + " (Debian's libcurl4): " + ::dlerror());
  }
  CurlLibrary library{};
  std::string missing;
  auto bind = [&](auto& entry, const char* name) {
    entry = reinterpret_cast<std::remove_reference_t<decltype(entry)>>(::dlsym(handle, name));
    if (entry == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
  };
  bind(library.global_init, "curl_global_init");
  bind(library.easy_init, "curl_easy_init");
  bind(library.easy_setopt, "curl_easy_setopt");
  bind(library.easy_perform, "curl_easy_perform");
  bind(library.easy_getinfo, "curl_easy_getinfo");
  bind(library.easy_reset, "curl_easy_reset");
  bind(library.easy_cleanup, "curl_easy_cleanup");
  bind(library.easy_strerror, "curl_easy_strerror");
  bind(library.slist_append, "curl_slist_append");
  bind(library.slist_free_all, "curl_slist_free_all");
  // Never unloaded: handles and the global state live until the process ends.
  if (!missing.empty()) return Fail(std::string(kLibrary) + " lacks " + missing);
  if (CURLcode code = library.global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
    return Fail(std::string("cannot initialize ") + kLibrary + ": " + library.easy_strerror(code));
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
