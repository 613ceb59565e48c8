#include "runner/progress.h"

#include <fmt/format.h>

#include <charconv>

#include "runner/atomic_file.h"

namespace runner {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// The record is one line: "BYTES TOTAL WHAT".
std::optional<std::uint64_t> TakeNumber(std::string_view& text) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data() + text.size() || *end != ' ') return std::nullopt;
  text.remove_prefix(static_cast<size_t>(end - text.data()) + 1);
  return value;
}

}  // namespace

std::string HumanBytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < 1024 * 1024 * 1024)
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / kMiB);
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1024.0 * kMiB));
}

std::string EncodeProgress(const Progress& progress) {
  return fmt::format("{} {} {}\n", progress.bytes, progress.total_bytes, progress.what);
}

std::optional<Progress> DecodeProgress(std::string_view text) {
  if (!text.ends_with('\n')) return std::nullopt;
  text.remove_suffix(1);
  Progress progress;
  auto bytes = TakeNumber(text);
  auto total = bytes ? TakeNumber(text) : std::nullopt;
  if (!total || text.find('\n') != std::string_view::npos) return std::nullopt;
  progress.bytes = *bytes;
  progress.total_bytes = *total;
  progress.what = std::string(text);
  return progress;
}

std::string DescribeProgress(const Progress& progress,
                             std::optional<std::chrono::duration<double>> elapsed) {
  if (progress.total_bytes == 0) return progress.what;
  std::string text = fmt::format("{} of {} {}", HumanBytes(progress.bytes),
                                 HumanBytes(progress.total_bytes), progress.what);
  if (elapsed && elapsed->count() > 0) {
    text += fmt::format(", {}/s", HumanBytes(static_cast<std::uint64_t>(
                                      static_cast<double>(progress.bytes) / elapsed->count())));
  }
  return text;
}

ProgressWriter::ProgressWriter(std::string path, std::chrono::milliseconds interval)
    : path_(std::move(path)), interval_(interval) {}

void ProgressWriter::Update(const Progress& progress) {
  if (path_.empty()) return;
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  bool complete = progress.total_bytes != 0 && progress.bytes >= progress.total_bytes;
  if (last_write_ && now - *last_write_ < interval_ && !complete) return;
  last_write_ = now;
  // Not synced: a record lost in a crash is a status line nobody sees.
  (void)WriteFileAtomic(path_, EncodeProgress(progress), /*sync=*/false);
}

}  // namespace runner
