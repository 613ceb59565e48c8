#include "runner/duration.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>

namespace runner {

namespace {

struct Unit {
  std::string_view name;
  int64_t milliseconds;
};

// Largest first: a duration gives its units in this order.
constexpr std::array<Unit, 4> kUnits = {{{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

// Far beyond any timeout, and far below where double and int64 lose precision.
constexpr double kMaxMilliseconds = 1e15;

std::string FormError(std::string_view text) {
  return fmt::format(
      "invalid duration '{}': write a number and a unit (h, m, s or ms), e.g. 90s, 10m, 1h30m, "
      "500ms",
      text);
}

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  double total = 0;
  size_t next_unit = 0;  // index into kUnits of the smallest unit still allowed
  size_t i = 0;
  if (text.empty()) return Fail(FormError(text));
  while (i < text.size()) {
    size_t number_begin = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == number_begin) return Fail(FormError(text));
    if (i < text.size() && text[i] == '.') {
      ++i;
      size_t fraction_begin = i;
      while (i < text.size() && IsDigit(text[i])) ++i;
      if (i == fraction_begin) return Fail(FormError(text));
    }
    std::string_view number = text.substr(number_begin, i - number_begin);
    if (number.size() > 15) return Fail(fmt::format("invalid duration '{}': too long", text));

    size_t unit_begin = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_begin, i - unit_begin);
    size_t unit_index = 0;
    while (unit_index < kUnits.size() && kUnits[unit_index].name != unit) ++unit_index;
    if (unit_index == kUnits.size()) return Fail(FormError(text));
    if (unit_index < next_unit) {
      return Fail(fmt::format(
          "invalid duration '{}': give each unit once, largest first, e.g. 1h30m", text));
    }
    next_unit = unit_index + 1;
    double value = 0;
    std::from_chars(number.data(), number.data() + number.size(), value);
    total += value * static_cast<double>(kUnits[unit_index].milliseconds);
  }
  if (total > kMaxMilliseconds) return Fail(fmt::format("invalid duration '{}': too long", text));
  auto milliseconds = static_cast<int64_t>(std::llround(total));
  if (milliseconds <= 0) {
    return Fail(fmt::format("invalid duration '{}': it must be more than zero", text));
  }
  return Duration(milliseconds);
}

std::string FormatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms < 0) return "-" + FormatDuration(Duration(-ms));
  if (ms < 1'000) return ms == 0 ? "0s" : fmt::format("{}ms", ms);
  if (ms < 60'000) {
    int64_t tenths = ms / 100;  // truncated, so 59.99s never shows as 60.0s
    if (tenths % 10 == 0) return fmt::format("{}s", tenths / 10);
    return fmt::format("{}.{}s", tenths / 10, tenths % 10);
  }
  int64_t seconds = ms / 1'000;
  std::string out;
  if (seconds >= 3'600) out += fmt::format("{}h", seconds / 3'600);
  if (seconds % 3'600 >= 60) out += fmt::format("{}m", seconds % 3'600 / 60);
  if (seconds % 60 != 0) out += fmt::format("{}s", seconds % 60);
  return out;
}

}  // namespace runner
