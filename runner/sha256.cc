#include "runner/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "runner/crypto.h"
#include "runner/fs.h"
#include "runner/hex.h"

namespace runner {

struct Sha256::State {
  EVP_MD_CTX* context = Crypto().EVP_MD_CTX_new();
};

Sha256::Sha256() : state_(new State) {
  const CryptoLibrary& crypto = Crypto();
  crypto.EVP_DigestInit_ex(state_->context, crypto.EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  Crypto().EVP_MD_CTX_free(state_->context);
  delete state_;
}

void Sha256::Update(std::string_view data) {
  Crypto().EVP_DigestUpdate(state_->context, data.data(), data.size());
}

std::string Sha256::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  Crypto().EVP_DigestFinal_ex(state_->context, digest, &length);
  return HexEncode(digest, length);
}

std::string Sha256Hex(std::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return hash.FinishHex();
}

Result<std::string> FileSha256Hex(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Fail("cannot read " + path + ": " + ErrnoText(errno));
  Sha256 hash;
  static thread_local char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail("cannot read " + path + ": " + ErrnoText(errno));
    if (n == 0) break;
    hash.Update(std::string_view(buffer, static_cast<size_t>(n)));
  }
  return hash.FinishHex();
}

}  // namespace runner
