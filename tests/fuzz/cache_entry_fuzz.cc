// A step cache entry, as a build reads it from a shared store that others write: what decodes
// encodes, and decodes back the same.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "runner/cache/step_cache.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = runner::fuzz::AsText(data, size);
  // The key the entry names, so that decoding gets past the key check.
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string key;
  if (value.is_object() && value.contains("key") && value["key"].is_string()) {
    key = value["key"].get<std::string>();
  }
  auto entry = runner::DecodeCacheEntry(text, key);
  if (!entry) return 0;
  std::string encoded = runner::EncodeCacheEntry(*entry);
  auto again = runner::DecodeCacheEntry(encoded, key);
  if (!again) runner::fuzz::Fail("an encoded cache entry does not decode: " + again.error());
  if (runner::EncodeCacheEntry(*again) != encoded) {
    runner::fuzz::Fail("an encoded cache entry does not decode the same");
  }
  return 0;
}
