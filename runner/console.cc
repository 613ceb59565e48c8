#include "runner/console.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

#include "runner/duration.h"

namespace runner {

namespace {

// The longest line the line-prefixed console holds back waiting for its newline.
constexpr size_t kMaxLineBytes = 64 * 1024;

std::string StepDuration(const StepRecord& step) {
  if (!step.started || !step.finished) return "";
  return " (" +
         FormatDuration(std::chrono::duration_cast<Duration>(*step.finished - *step.started)) + ")";
}

size_t TerminalWidth() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// The last `count` lines of `text`.
std::string_view LastLines(std::string_view text, size_t count) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  while (count > 0 && pos > 0) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string_view::npos) return text;
    --count;
  }
  return count == 0 ? text.substr(pos + 1) : text;
}

}  // namespace

bool StdoutIsTerminal() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) && !(term && std::string_view(term) == "dumb");
}

Console::Console(std::FILE* out, bool terminal, std::FILE* warnings, Clock now)
    : out_(out), terminal_(terminal), warnings_(warnings), now_(std::move(now)) {}

void Console::PipelineWarnings(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), warnings_);
}

Duration Console::tick_interval() const {
  // Also without a terminal: progress lines are due every kProgressLineInterval.
  return std::chrono::seconds(1);
}

void Console::Write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

void Console::ClearStatus() {
  if (!status_shown_) return;
  Write("\r\x1b[K");
  status_shown_ = false;
}

void Console::DrawStatus() {
  if (!terminal_ || running_.empty()) return;
  auto now = now_();
  std::string line = fmt::format("[{}/{}]", finished_, total_);
  for (const auto& [id, since] : running_) {
    auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - since);
    line += fmt::format(" {} {}", id, FormatDuration(elapsed));
    if (progress_.contains(id)) line += " " + DescribeStepProgress(id);
  }
  size_t width = TerminalWidth();
  if (line.size() >= width) line = line.substr(0, width - 4) + "...";
  Write("\r\x1b[K" + line);
  status_shown_ = true;
}

std::string Console::DescribeStepProgress(const std::string& id) const {
  const Progress& progress = progress_.at(id).progress;
  auto started = running_.find(id);
  if (started == running_.end()) return DescribeProgress(progress, std::nullopt);
  return DescribeProgress(progress, now_() - started->second);
}

void Console::WriteProgressLine(const std::string& id) {
  ShownProgress& shown = progress_.at(id);
  auto now = now_();
  std::string elapsed;
  if (auto started = running_.find(id); started != running_.end()) {
    elapsed = fmt::format(
        " ({})",
        FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(now - started->second)));
  }
  Write(fmt::format("[{}] {}{}\n", id, DescribeStepProgress(id), elapsed));
  shown.printed = shown.progress;
  shown.printed_at = now;
}

void Console::StepProgress(const StepRecord& step, const Progress& progress) {
  ShownProgress& shown = progress_[step.id];
  shown.progress = progress;
  if (terminal_) {
    DrawStatus();
  } else if (!shown.printed) {
    WriteProgressLine(step.id);
  }
}

void Console::BuildStarted(const BuildRecord& build) {
  total_ = build.steps.size();
  build_dir_ = build.dir;
  const BuildContext& context = build.context;
  Write(fmt::format("runner: build {} (branch {}, commit {}, {} steps)\n", context.id,
                    context.branch, context.short_commit.empty() ? "unknown" : context.short_commit,
                    total_));
}

void Console::StepStarted(const StepRecord& step) {
  running_[step.id] = now_();
  if (terminal_) {
    DrawStatus();
  } else {
    Write(fmt::format("[{}] started ({})\n", step.id, step.kind));
  }
}

void Console::StepOutput(const StepRecord& step, std::string_view text) {
  if (terminal_) return;
  std::string& partial = partial_lines_[step.id];
  std::string out;
  while (!text.empty()) {
    size_t room = kMaxLineBytes - partial.size();
    // Looks no further than the line can grow, so a line without a newline costs linear time.
    size_t end = text.substr(0, room + 1).find('\n');
    if (end == std::string_view::npos && text.size() < room) {
      partial.append(text);
      break;
    }
    // A complete line, or one that reached the limit: it goes out as a line of its own and
    // the rest continues on the next, prefixed again.
    size_t take = std::min(end, room);
    partial.append(text.substr(0, take));
    text.remove_prefix(take == end ? take + 1 : take);
    out += fmt::format("[{}] {}\n", step.id, partial);
    partial.clear();
  }
  if (!out.empty()) Write(out);
}

void Console::StepFinished(const StepRecord& step) {
  auto progress = progress_.find(step.id);
  if (!terminal_ && progress != progress_.end() &&
      progress->second.printed != progress->second.progress) {
    // Its last state, as a line of its own before the step's end.
    auto partial = partial_lines_.find(step.id);
    if (partial != partial_lines_.end() && !partial->second.empty()) {
      Write(fmt::format("[{}] {}\n", step.id, partial->second));
      partial->second.clear();
    }
    WriteProgressLine(step.id);
  }
  if (progress != progress_.end()) progress_.erase(progress);
  running_.erase(step.id);
  ++finished_;
  std::string status(StatusName(step.status));
  std::string detail =
      step.message.empty() || step.status == StepStatus::kSuccess ? "" : ": " + step.message;
  if (!step.log_error.empty()) detail += "; " + step.log_error;
  if (step.cache && step.cache->hit) {
    detail +=
        fmt::format(" (cache hit {} from {})", step.cache->key.substr(0, 12), step.cache->from);
  }
  if (terminal_) {
    ClearStatus();
    Write(fmt::format("[{}/{}] {} {}{}{}\n", finished_, total_, step.id, status, detail,
                      StepDuration(step)));
    bool failed = step.status == StepStatus::kFailed || step.status == StepStatus::kTimedOut;
    if (failed && !step.log.empty()) {
      std::string_view tail = LastLines(step.log_tail, 200);
      Write(
          fmt::format("--- output of '{}' (full log: {}/{}) ---\n", step.id, build_dir_, step.log));
      Write(tail);
      if (!tail.empty() && tail.back() != '\n') Write("\n");
      Write("---\n");
    }
    DrawStatus();
    return;
  }
  auto partial = partial_lines_.find(step.id);
  if (partial != partial_lines_.end()) {
    if (!partial->second.empty()) Write(fmt::format("[{}] {}\n", step.id, partial->second));
    partial_lines_.erase(partial);
  }
  Write(fmt::format("[{}] {}{}{}\n", step.id, status, detail, StepDuration(step)));
}

void Console::Tick() {
  if (terminal_) {
    DrawStatus();
    return;
  }
  auto now = now_();
  for (auto& [id, shown] : progress_) {
    if (now - shown.printed_at >= kProgressLineInterval) WriteProgressLine(id);
  }
}

void Console::BuildFinished(const BuildRecord& build) {
  ClearStatus();
  std::map<std::string_view, int> counts;
  int incomplete_logs = 0;
  for (const StepRecord& step : build.steps) {
    ++counts[StatusName(step.status)];
    if (!step.log_error.empty()) ++incomplete_logs;
  }
  std::string summary;
  for (const auto& [status, count] : counts) {
    summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", count, status);
  }
  if (incomplete_logs > 0) summary += fmt::format("; {} incomplete logs", incomplete_logs);
  Write(fmt::format(
      "runner: build {} {} in {} ({}); records in {}\n", build.context.id, build.status,
      FormatDuration(std::chrono::duration_cast<Duration>(build.finished - build.started)), summary,
      build_dir_));
}

}  // namespace runner
