#include "runner/crypto.h"

#include <cstdio>
#include <cstdlib>

#include "runner/lazy_library.h"

namespace runner {

namespace {

CryptoLibrary Load() {
  Result<CryptoLibrary> library = LoadLazyLibrary<CryptoLibrary>(
      "libcrypto.so.3", "libssl3", [](SymbolBinder& binder, CryptoLibrary& crypto) {
#define RUNNER_CRYPTO_BIND(name) binder.Bind(crypto.name, #name);
        RUNNER_CRYPTO_ENTRY_POINTS(RUNNER_CRYPTO_BIND)
#undef RUNNER_CRYPTO_BIND
      });
  if (!library) {
    std::fprintf(stderr, "runner: %s\n", library.error().c_str());
    std::_Exit(2);
  }
  return *library;
}

}  // namespace

const CryptoLibrary& Crypto() {
  static const CryptoLibrary library = Load();
  return library;
}

}  // namespace runner
