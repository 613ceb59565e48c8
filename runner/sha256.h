// SHA-256 digests (OpenSSL), as lowercase hex (runner/hex.h).
#pragma once

#include <string>
#include <string_view>

#include "runner/result.h"

namespace runner {

std::string Sha256Hex(std::string_view data);

// The digest of a file's contents, read in blocks.
Result<std::string> FileSha256Hex(const std::string& path);

// Incremental hashing for data that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  std::string FinishHex();

 private:
  struct State;
  State* state_;
};

}  // namespace runner
