#include "runner/masker.h"

#include <gmock/gmock.h>
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

// Whether any secret (or any of its forms the test names) shows in `text`.
::testing::AssertionResult HoldsNone(const std::string& text,
                                     const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (text.find(secret) != std::string::npos) {
      return ::testing::AssertionFailure() << "'" << secret << "' in '" << text << "'";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(SecretMaskerTest, SecretsAddedWhileStreamsRunAreMaskedFromTheNextPiece) {
  SecretMasker masker({"first-secret"});
  SecretMasker::Stream stream(masker);
  std::string out = stream.Feed("a first-secret, then ");
  masker.Add("token-abc");
  masker.Add("");
  out += stream.Feed("token-abc and first-secret\n");
  out += stream.Finish();
  EXPECT_EQ(out, "a ***, then *** and ***\n");
  EXPECT_EQ(masker.Mask("token-abc"), "***");
}

TEST(SecretMaskerTest, UrlEncodedAndBase64FormsAreMasked) {
  SecretMasker masker({"p@ss w/rd!"});
  const std::vector<std::string> cases = {
      "postgres://u:p%40ss%20w%2Frd%21@h/db",  // RFC 3986, upper-case hex
      "postgres://u:p%40ss%20w%2frd%21@h/db",  // lower-case hex
      "q=p%40ss+w%2Frd%21&x=1",                // form-encoded: `+` for the space
      "q=p%40ss%20w/rd%21&x=1",                // Python's quote keeps `/`
      "q=p%40ss%20w%2Frd!&x=1",                // encodeURIComponent keeps `!`
      "b64=cEBzcyB3L3JkIQ==;",                 // standard, padded
      "b64=cEBzcyB3L3JkIQ;",                   // without padding
  };
  for (const std::string& text : cases) {
    std::string masked = masker.Mask(text);
    EXPECT_THAT(masked, ::testing::HasSubstr("***")) << text << " gives " << masked;
    EXPECT_TRUE(HoldsNone(masked, {"p%40ss", "p@ss", "cEBzcyB3L3JkIQ"})) << text;
  }
  // URL-safe base64 differs from the standard one where the value's bits give `+` or `/`.
  SecretMasker binary({"\xfb\xff\xbf?"});
  EXPECT_EQ(binary.Mask("+/+/Pw== -_-_Pw -_-_Pw=="), "*** *** ***");
}

TEST(SecretMaskerTest, AMaskNeverCompletesASecretWithTheTextAroundIt) {
  const std::vector<std::vector<std::string>> sets = {
      {"x***"}, {"**"}, {"a*b", "*ab"}, {"*#~", "#x#", "~~"}, {"x***", "***y"}};
  const std::vector<std::string> texts = {"xx***",   "xx****y", "a*a*bb*ab",  "***#x#~~*#~~",
                                          "x*x**x*", "a**b",    "~*#~~#x##x#"};
  for (const auto& secrets : sets) {
    SecretMasker masker(secrets);
    for (const std::string& text : texts) {
      EXPECT_TRUE(HoldsNone(masker.Mask(text), secrets)) << text;
      // And so at every split of the text into two writes.
      for (size_t split = 0; split <= text.size(); ++split) {
        SecretMasker::Stream stream(masker);
        std::string out = stream.Feed(text.substr(0, split));
        out += stream.Feed(text.substr(split));
        out += stream.Finish();
        EXPECT_EQ(out, masker.Mask(text)) << text << " split at " << split;
      }
    }
  }
  EXPECT_EQ(SecretMasker({"x***"}).Mask("xx***"), "x###");
}

TEST(SecretMaskerTest, LongStreamWithoutNewlineIsMaskedAtEveryChunkBoundary) {
  SecretMasker masker({"hunter2-secret", "abc"});
  std::string text;
  for (int i = 0; i < 2000; ++i) text += std::string(i % 37, 'a') + "hunter2-secret" + "ab";
  for (size_t chunk : {1u, 5u, 13u, 14u, 4096u}) {
    SecretMasker::Stream stream(masker);
    std::string out;
    for (size_t at = 0; at < text.size(); at += chunk) {
      out += stream.Feed(std::string_view(text).substr(at, chunk));
    }
    out += stream.Finish();
    EXPECT_EQ(out, masker.Mask(text)) << chunk;
    EXPECT_TRUE(HoldsNone(out, {"hunter", "secret"})) << chunk;
  }
}

TEST(SecretMaskerTest, StreamHoldsBackLessThanTheLongestSecret) {
  SecretMasker masker({"aaab"});
  SecretMasker::Stream stream(masker);
  std::string out;
  for (size_t fed = 100; fed <= 100000; fed += 100) {
    out += stream.Feed(std::string(100, 'a'));
    EXPECT_GE(out.size() + 3, fed);
  }
  out += stream.Feed("b");
  out += stream.Finish();
  EXPECT_EQ(out, std::string(100000 - 3, 'a') + "***");
}

}  // namespace
}  // namespace runner
