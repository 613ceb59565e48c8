#include "runner/masker.h"

#include <gtest/gtest.h>

namespace runner {
namespace {

TEST(SecretMaskerTest, MasksEveryOccurrence) {
  SecretMasker masker({"s3cret"});
  EXPECT_EQ(masker.Mask("a s3cret and s3crets"), "a *** and ***s");
}

TEST(SecretMaskerTest, EmptyValuesAreIgnored) {
  SecretMasker masker({"", "x1y2"});
  EXPECT_EQ(masker.Mask("abc x1y2"), "abc ***");
}

TEST(SecretMaskerTest, LongestSecretWins) {
  SecretMasker masker({"abc", "abcdef"});
  EXPECT_EQ(masker.Mask("abcdef abc"), "*** ***");
}

TEST(SecretMaskerTest, ValueSplitAcrossTwoWritesIsMasked) {
  SecretMasker masker({"hunter2-token"});
  SecretMasker::Stream stream(masker);
  std::string out = stream.Feed("pw=hunter");
  EXPECT_EQ(out, "pw=");
  out += stream.Feed("2-token done\n");
  out += stream.Finish();
  EXPECT_EQ(out, "pw=*** done\n");
}

TEST(SecretMaskerTest, ValueSplitByteByByteIsMasked) {
  SecretMasker masker({"abcdef", "abc"});
  SecretMasker::Stream stream(masker);
  std::string out;
  for (char c : std::string("xabcdefyabcz")) out += stream.Feed(std::string(1, c));
  out += stream.Finish();
  EXPECT_EQ(out, "x***y***z");
}

TEST(SecretMaskerTest, HeldBackPrefixIsReleasedAtFinish) {
  SecretMasker masker({"secret"});
  SecretMasker::Stream stream(masker);
  EXPECT_EQ(stream.Feed("the sec"), "the ");
  EXPECT_EQ(stream.Finish(), "sec");
}

TEST(SecretMaskerTest, MultiLineValueIsMaskedWholeAndLineByLine) {
  SecretMasker masker({"-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----\n"});
  EXPECT_EQ(masker.Mask("key: -----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----\n!"),
            "key: ***!");
  EXPECT_EQ(masker.Mask("only MIIEvQIBADANBg here"), "only *** here");
}

}  // namespace
}  // namespace runner
