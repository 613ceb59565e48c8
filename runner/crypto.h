// libcrypto (OpenSSL 3), loaded on first use rather than linked: relocating it was 3,400 of the
// 5,900 symbol lookups every runner process made at start (0.8 ms of each start here), and a
// build of shell steps, `validate`, `plan` and the `runner __step` of most kinds hash nothing.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <string_view>

namespace runner {

// The entry points the runner calls, by their OpenSSL names.
#define RUNNER_CRYPTO_ENTRY_POINTS(X) \
  X(CRYPTO_memcmp)                    \
  X(EVP_Digest)                       \
  X(EVP_DigestFinal_ex)               \
  X(EVP_DigestInit_ex)                \
  X(EVP_DigestUpdate)                 \
  X(EVP_EncodeBlock)                  \
  X(EVP_MD_CTX_free)                  \
  X(EVP_MD_CTX_new)                   \
  X(EVP_md5)                          \
  X(EVP_sha256)                       \
  X(HMAC)

struct CryptoLibrary {
#define RUNNER_CRYPTO_ENTRY_POINT(name) decltype(&::name) name;
  RUNNER_CRYPTO_ENTRY_POINTS(RUNNER_CRYPTO_ENTRY_POINT)
#undef RUNNER_CRYPTO_ENTRY_POINT
};

// Loaded once per process; safe from any thread. A runner that cannot hash can keep none of its
// promises about what it sent or stored, so when libcrypto cannot be loaded the process ends
// there, with status 2 and "runner: cannot load libcrypto.so.3 (Debian's libssl3): why".
const CryptoLibrary& Crypto();

// Standard base64 (RFC 4648, padded) of `data`, by libcrypto.
std::string Base64(std::string_view data);

}  // namespace runner
