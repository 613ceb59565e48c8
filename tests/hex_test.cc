#include "runner/hex.h"

#include <gtest/gtest.h>

namespace runner {
namespace {

TEST(HexTest, EncodesLowercase) {
  EXPECT_EQ(HexEncode(std::string_view("\x00\x0f\xab\xff", 4)), "000fabff");
  EXPECT_EQ(HexEncode(""), "");
}

TEST(HexTest, DecodesEitherCaseAndRoundTrips) {
  EXPECT_EQ(HexDecode("000FabfF"), std::string("\x00\x0f\xab\xff", 4));
  EXPECT_EQ(HexDecode(HexEncode("runner")), "runner");
}

TEST(HexTest, RejectsOddLengthAndNonDigits) {
  EXPECT_EQ(HexDecode("abc"), std::nullopt);
  EXPECT_EQ(HexDecode("zz"), std::nullopt);
}

}  // namespace
}  // namespace runner
