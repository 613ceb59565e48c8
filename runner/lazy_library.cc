#include "runner/lazy_library.h"

#include <dlfcn.h>

namespace runner {

Result<SymbolBinder> SymbolBinder::Open(const char* soname, const char* package) {
  void* handle = ::dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
  if (handle == nullptr) {
    return Fail(std::string("cannot load ") + soname + " (Debian's " + package +
                "): " + ::dlerror());
  }
  return SymbolBinder(soname, handle);
}

void* SymbolBinder::Find(const char* name) {
  void* symbol = ::dlsym(handle_, name);
  if (symbol == nullptr) missing_ += std::string(missing_.empty() ? "" : ", ") + name;
  return symbol;
}

Status SymbolBinder::Complete() const {
  if (!missing_.empty()) return Fail(std::string(soname_) + " lacks " + missing_);
  return {};
}

}  // namespace runner
