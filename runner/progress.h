// How far a running step is, for the console (SPEC section 5; issue 14): bytes sent and the
// total for a transfer, or only that the step is working (a bake). A `runner __step` child
// rewrites its record whole (runner/atomic_file.h) at the file RUNNER_PROGRESS names; the
// runner reads it while the step runs and once as it ends. Display only: a record that cannot
// be read is no error, and it never holds more than numbers and the kind's fixed words.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace runner {

inline constexpr char kStepProgressVar[] = "RUNNER_PROGRESS";

struct Progress {
  std::string what;               // the kind's verb for the work: "sent", "baking"
  std::uint64_t bytes = 0;        // done so far
  std::uint64_t total_bytes = 0;  // 0: the step moves no bytes (or does not know how many)

  bool operator==(const Progress&) const = default;
};

// "512 B", "12.3 KiB", "412.0 MiB", "1.00 GiB".
std::string HumanBytes(std::uint64_t bytes);

std::string EncodeProgress(const Progress& progress);
// nullopt for anything but a record EncodeProgress wrote.
std::optional<Progress> DecodeProgress(std::string_view text);

// "412.0 MiB of 1.00 GiB sent, 180.2 MiB/s" (the rate when `elapsed` is given and positive), or
// "baking".
std::string DescribeProgress(const Progress& progress,
                             std::optional<std::chrono::duration<double>> elapsed);

// The child's side: rewrites the record at `path` at most every `interval`, and always when the
// bytes reach the total, so that the last state is never lost to the rate limit. Thread-safe.
class ProgressWriter {
 public:
  explicit ProgressWriter(std::string path,
                          std::chrono::milliseconds interval = std::chrono::milliseconds(250));
  void Update(const Progress& progress);

 private:
  std::string path_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_write_;
};

}  // namespace runner
