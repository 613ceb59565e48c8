#include "runner/cache/cache_key.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace runner {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

std::string KeyOf(std::string_view purpose, const Fields& fields) {
  CacheKey key(purpose);
  for (const auto& [tag, value] : fields) key.Add(tag, value);
  return key.FinishHex();
}

TEST(CacheKeyTest, SameFieldsSameKey) {
  Fields fields = {{"kind", "run"}, {"run", "make"}};
  EXPECT_EQ(KeyOf("step", fields), KeyOf("step", fields));
  EXPECT_EQ(KeyOf("step", fields).size(), 64u);
}

TEST(CacheKeyTest, TextMovedBetweenFieldsChangesTheKey) {
  // Without length prefixes these would hash the same bytes.
  EXPECT_NE(KeyOf("step", {{"path", "src/ab"}, {"digest", "c"}}),
            KeyOf("step", {{"path", "src/a"}, {"digest", "bc"}}));
  EXPECT_NE(KeyOf("step", {{"ab", "c"}}), KeyOf("step", {{"a", "bc"}}));
  EXPECT_NE(KeyOf("step", {{"a", ""}, {"b", ""}}), KeyOf("step", {{"a", "b"}}));
}

TEST(CacheKeyTest, PurposeAndOrderArePartOfTheKey) {
  EXPECT_NE(KeyOf("step", {{"a", "1"}}), KeyOf("bake", {{"a", "1"}}));
  EXPECT_NE(KeyOf("step", {{"a", "1"}, {"b", "2"}}), KeyOf("step", {{"b", "2"}, {"a", "1"}}));
}

TEST(CacheKeyTest, VersionIsTheFirstField) {
  // The encoding, written out: a change to it (or to kCacheKeyVersion) must be deliberate.
  auto prefixed = [](std::string_view bytes) {
    std::string out(8, '\0');
    out[0] = static_cast<char>(bytes.size());
    return out + std::string(bytes);
  };
  std::string bytes = prefixed("runner-cache-key") + prefixed(std::to_string(kCacheKeyVersion)) +
                      prefixed("purpose") + prefixed("step") + prefixed("kind") + prefixed("run");
  EXPECT_EQ(KeyOf("step", {{"kind", "run"}}), Sha256Hex(bytes));
}

}  // namespace
}  // namespace runner
