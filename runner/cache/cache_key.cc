#include "runner/cache/cache_key.h"

#include <array>
#include <cstdint>

namespace runner {

CacheKey::CacheKey(std::string_view purpose, int version) {
  Add("runner-cache-key", std::to_string(version));
  Add("purpose", purpose);
}

void CacheKey::Add(std::string_view tag, std::string_view value) {
  AddLengthPrefixed(tag);
  AddLengthPrefixed(value);
}

std::string CacheKey::FinishHex() { return hash_.FinishHex(); }

void CacheKey::AddLengthPrefixed(std::string_view bytes) {
  std::array<char, 8> length;
  std::uint64_t n = bytes.size();
  for (char& byte : length) {
    byte = static_cast<char>(n & 0xff);
    n >>= 8;
  }
  hash_.Update(std::string_view(length.data(), length.size()));
  hash_.Update(bytes);
}

}  // namespace runner
