// Cache keys (SPEC section 8): a SHA-256 over tagged, length-prefixed fields, as ccache tags
// every field it mixes in. Each field is its tag and its value, each preceded by its length as
// 8 little-endian bytes, so no two different sequences of fields hash the same bytes (moving a
// file to another directory, or text from one field to the next, changes the key). The first
// field is always the key format's version and the key's purpose.
#pragma once

#include <string>
#include <string_view>

#include "runner/sha256.h"

namespace runner {

// Raised whenever what a key covers, or how it is encoded, changes: every older key misses.
inline constexpr int kCacheKeyVersion = 1;

class CacheKey {
 public:
  // `purpose` names what is keyed ("step", "bake"), so keys of different uses never meet.
  // `version` is the key format's (another one only in tests).
  explicit CacheKey(std::string_view purpose, int version = kCacheKeyVersion);

  void Add(std::string_view tag, std::string_view value);

  // The key, as 64 lowercase hex digits. Call once.
  std::string FinishHex();

 private:
  void AddLengthPrefixed(std::string_view bytes);
  Sha256 hash_;
};

}  // namespace runner
