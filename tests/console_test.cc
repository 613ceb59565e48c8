#include "runner/console.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace runner {
namespace {

using ::testing::HasSubstr;
using SteadyTime = std::chrono::steady_clock::time_point;

// A console writing to memory, on a clock the test moves.
class ConsoleTest : public ::testing::Test {
 protected:
  ~ConsoleTest() override {
    if (out_ != nullptr) std::fclose(out_);
    std::free(buffer_);
  }

  Console& Make(bool terminal) {
    out_ = open_memstream(&buffer_, &size_);
    console_ = std::make_unique<Console>(out_, terminal, out_, [this] { return now_; });
    BuildRecord build;
    build.context.id = "orders-main-7";
    build.steps.resize(2);
    console_->BuildStarted(build);
    return *console_;
  }

  std::string Output() {
    std::fflush(out_);
    return std::string(buffer_, size_);
  }

  // The lines that start with `prefix`.
  std::vector<std::string> Lines(const std::string& prefix) {
    std::vector<std::string> lines;
    std::string text = Output();
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      if (line.starts_with(prefix)) lines.push_back(line);
      start = end + 1;
    }
    return lines;
  }

  static StepRecord Step(const std::string& id, const std::string& kind) {
    StepRecord step;
    step.id = id;
    step.kind = kind;
    step.status = StepStatus::kRunning;
    return step;
  }

  SteadyTime now_ = SteadyTime(std::chrono::hours(100));
  std::FILE* out_ = nullptr;
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<Console> console_;
};

TEST_F(ConsoleTest, WithoutATerminalProgressIsALineWhenFirstSeenThenEveryFewSecondsAndAtTheEnd) {
  Console& console = Make(false);
  StepRecord publish = Step("publish", "upload");
  console.StepStarted(publish);
  // Twelve seconds of a transfer, reported ten times a second, the console ticked as often.
  const std::uint64_t total = 120 * 1024 * 1024;
  for (int tenth = 0; tenth <= 120; ++tenth) {
    console.StepProgress(publish, Progress{"sent", total * tenth / 130, total});
    console.Tick();
    now_ += std::chrono::milliseconds(100);
  }
  console.StepProgress(publish, Progress{"sent", total, total});
  publish.status = StepStatus::kSuccess;
  console.StepFinished(publish);

  std::vector<std::string> lines = Lines("[publish] ");
  ASSERT_EQ(lines.size(), 6u) << Output();
  EXPECT_EQ(lines[0], "[publish] started (upload)");
  // At 0 s, 5 s and 10 s; then the final state.
  EXPECT_EQ(lines[1], "[publish] 0 B of 120.0 MiB sent (0s)");
  EXPECT_EQ(lines[2], "[publish] 46.2 MiB of 120.0 MiB sent, 9.2 MiB/s (5s)");
  EXPECT_EQ(lines[3], "[publish] 92.3 MiB of 120.0 MiB sent, 9.2 MiB/s (10s)");
  EXPECT_EQ(lines[4], "[publish] 120.0 MiB of 120.0 MiB sent, 9.9 MiB/s (12s)");
  EXPECT_EQ(lines[5], "[publish] success");
}

TEST_F(ConsoleTest, WithoutATerminalABakeGetsAnElapsedLineEveryFewSeconds) {
  Console& console = Make(false);
  StepRecord bake = Step("bake", "packer");
  console.StepStarted(bake);
  console.StepProgress(bake, Progress{"baking", 0, 0});
  for (int second = 0; second < 11; ++second) {
    now_ += std::chrono::seconds(1);
    console.Tick();
  }
  bake.status = StepStatus::kSuccess;
  console.StepFinished(bake);
  std::vector<std::string> lines = Lines("[bake] baking");
  EXPECT_EQ(lines, (std::vector<std::string>{"[bake] baking (0s)", "[bake] baking (5s)",
                                             "[bake] baking (10s)"}))
      << Output();
}

TEST_F(ConsoleTest, OnATerminalTheStatusLineShowsBytesAndRate) {
  Console& console = Make(true);
  StepRecord publish = Step("publish", "upload");
  console.StepStarted(publish);
  now_ += std::chrono::seconds(4);
  console.StepProgress(publish, Progress{"sent", 512 * 1024 * 1024, 1024 * 1024 * 1024});
  EXPECT_THAT(Output(), HasSubstr("\r\x1b[K[0/2] publish 4s 512.0 MiB of 1.00 GiB sent, "
                                  "128.0 MiB/s"));
  // Nothing of it as a line of its own.
  EXPECT_TRUE(Lines("[publish]").empty()) << Output();
}

}  // namespace
}  // namespace runner
