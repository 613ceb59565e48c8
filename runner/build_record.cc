#include "runner/build_record.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <chrono>

namespace runner {

std::string_view StatusName(StepStatus status) {
  switch (status) {
    case StepStatus::kPending:
      return "pending";
    case StepStatus::kRunning:
      return "running";
    case StepStatus::kSuccess:
      return "success";
    case StepStatus::kFailed:
      return "failed";
    case StepStatus::kTimedOut:
      return "timed_out";
    case StepStatus::kSkipped:
      return "skipped";
    case StepStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

double Seconds(WallTime from, WallTime to) {
  return std::chrono::duration<double>(to - from).count();
}

// By the calendar of <chrono> and a compiled format: a report holds two per step, and
// gmtime_r takes a lock and fmt parses its format string on every call.
std::string FormatTimestamp(WallTime time) {
  using namespace std::chrono;
  auto day = floor<days>(time);
  year_month_day date{day};
  hh_mm_ss clock{floor<milliseconds>(time - day)};
  return fmt::format(FMT_COMPILE("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z"),
                     static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                     static_cast<unsigned>(date.day()), clock.hours().count(),
                     clock.minutes().count(), clock.seconds().count(), clock.subseconds().count());
}

}  // namespace runner
