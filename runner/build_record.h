// What a build did: the data behind report.json, junit.xml and the console summary
// (SPEC section 5).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/build_context.h"
#include "runner/pipeline.h"
#include "runner/step_outputs.h"

namespace runner {

using WallTime = std::chrono::system_clock::time_point;

// A file a step produced (SPEC section 5, report.json's `artifacts`).
struct Artifact {
  std::string path;  // relative to the workspace, or absolute when outside it
  std::uint64_t size = 0;
  std::string sha256;  // hex
  std::string url;     // where it was published; empty for a local file
};

enum class StepStatus { kPending, kRunning, kSuccess, kFailed, kTimedOut, kSkipped, kCancelled };

// "success", "failed", "timed_out", "skipped", "cancelled" (and "pending", "running").
std::string_view StatusName(StepStatus status);

// What the step cache did for a step (SPEC section 8, report.json's `cache`).
struct StepCacheRecord {
  bool hit = false;
  std::string key;
  std::string from;                 // hit: the build that ran the step
  std::vector<std::string> stored;  // miss: where the result was stored ("local", a URL)
};

struct StepRecord {
  std::string id;
  std::string name;
  std::string kind;
  StepStatus status = StepStatus::kPending;
  std::optional<int> exit_code;
  int attempts = 0;
  std::optional<WallTime> started;
  std::optional<WallTime> finished;
  Outputs outputs;
  std::vector<Artifact> artifacts;
  std::string log;  // relative to the build directory; empty when the step never ran
  // Why the log is not complete (a full disk), empty when it is: such a step is never reported
  // as a clean success.
  std::string log_error;
  std::string message;   // why it failed, timed out, was skipped or cancelled
  std::string log_tail;  // the end of the (masked) log, for junit.xml and the console
  std::optional<StepCacheRecord> cache;  // set when the step has a key
};

struct BuildRecord {
  BuildContext context;
  std::string dir;     // STATE/builds/BUILD_ID, absolute
  std::string status;  // success, failed, timed_out, cancelled
  WallTime started;
  WallTime finished;
  std::vector<StepRecord> steps;  // in plan order
  int exit_code = 0;
  // Why report.json or junit.xml could not be written; empty when both were.
  std::string records_error;
};

double Seconds(WallTime from, WallTime to);

// "2026-11-21T22:46:22.123Z"
std::string FormatTimestamp(WallTime time);

}  // namespace runner
