#include "runner/build_record.h"

#include <fmt/format.h>

#include <ctime>

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

std::string FormatTimestamp(WallTime time) {
  auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  std::time_t t = seconds.count();
  std::tm utc{};
  gmtime_r(&t, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     millis.count());
}

}  // namespace runner
