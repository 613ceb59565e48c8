#include "runner/duration.h"

#include <gtest/gtest.h>

namespace runner {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDurationTest, AcceptsUnitsLargestFirst) {
  EXPECT_EQ(ParseDuration("90s"), Duration(seconds(90)));
  EXPECT_EQ(ParseDuration("10m"), Duration(minutes(10)));
  EXPECT_EQ(ParseDuration("1h30m"), Duration(minutes(90)));
  EXPECT_EQ(ParseDuration("500ms"), Duration(milliseconds(500)));
  EXPECT_EQ(ParseDuration("2h"), Duration(hours(2)));
  EXPECT_EQ(ParseDuration("1h2m3s4ms"), Duration(milliseconds(3'723'004)));
  EXPECT_EQ(ParseDuration("1.5s"), Duration(milliseconds(1'500)));
  EXPECT_EQ(ParseDuration("0.5h"), Duration(minutes(30)));
}

TEST(ParseDurationTest, BareNumberSaysTheAcceptedForm) {
  auto result = ParseDuration("10");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(),
            "invalid duration '10': write a number and a unit (h, m, s or ms), e.g. 90s, 10m, "
            "1h30m, 500ms");
}

TEST(ParseDurationTest, RejectsUnknownUnitsAndMalformedText) {
  for (const char* text :
       {"10x", "", "s", "h1", "1 h", "1h 30m", "-5s", "1.s", "1..5s", "10sec", "1d", "5M", "ms"}) {
    auto result = ParseDuration(text);
    ASSERT_FALSE(result) << text;
    EXPECT_EQ(result.error(),
              std::string("invalid duration '") + text +
                  "': write a number and a unit (h, m, s or ms), e.g. 90s, 10m, 1h30m, 500ms");
  }
}

TEST(ParseDurationTest, RejectsUnitsOutOfOrderOrRepeated) {
  for (const char* text : {"30m1h", "1m1m", "5s1m", "1ms1s"}) {
    auto result = ParseDuration(text);
    ASSERT_FALSE(result) << text;
    EXPECT_EQ(result.error(), std::string("invalid duration '") + text +
                                  "': give each unit once, largest first, e.g. 1h30m");
  }
}

TEST(ParseDurationTest, RejectsZeroAndOverflow) {
  EXPECT_EQ(ParseDuration("0s").error(), "invalid duration '0s': it must be more than zero");
  EXPECT_EQ(ParseDuration("0h0m").error(), "invalid duration '0h0m': it must be more than zero");
  EXPECT_EQ(ParseDuration("99999999999999999999h").error(),
            "invalid duration '99999999999999999999h': too long");
  EXPECT_EQ(ParseDuration("999999999999h").error(), "invalid duration '999999999999h': too long");
}

TEST(FormatDurationTest, ShortHumanForm) {
  EXPECT_EQ(FormatDuration(Duration(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(1'500)), "1.5s");
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(milliseconds(59'999)), "59.9s");
  EXPECT_EQ(FormatDuration(seconds(72)), "1m12s");
  EXPECT_EQ(FormatDuration(minutes(10)), "10m");
  EXPECT_EQ(FormatDuration(seconds(3'723)), "1h2m3s");
  EXPECT_EQ(FormatDuration(seconds(3'603)), "1h3s");
  EXPECT_EQ(FormatDuration(hours(2)), "2h");
  EXPECT_EQ(FormatDuration(milliseconds(-1'500)), "-1.5s");
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
  for (Duration d : {Duration(seconds(90)), Duration(minutes(61)), Duration(milliseconds(1'500)),
                     Duration(milliseconds(7)), Duration(seconds(3'723))}) {
    EXPECT_EQ(ParseDuration(FormatDuration(d)), d) << FormatDuration(d);
  }
}

}  // namespace
}  // namespace runner
