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

std::string Base64(std::string_view data) {
  // EVP_EncodeBlock ends what it writes with a NUL, which lands on the string's own terminator.
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int size = Crypto().EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(data.data()),
                                      static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(size));
  return out;
}

}  // namespace runner
