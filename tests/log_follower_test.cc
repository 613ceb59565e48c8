#include "runner/serve/log_follower.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e_util.h"
#include "tests/test_util.h"

namespace runner::serve {
namespace {

using runner::testing::AwaitCondition;
using runner::testing::TempDir;

void Append(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary | std::ios::app) << text;
}

// What one subscriber got, filled by the follower's thread.
struct Received {
  std::mutex mutex;
  std::string bytes;
  std::vector<std::uint64_t> end_offsets;
  std::vector<std::size_t> chunk_sizes;
  int calls = 0;
  std::optional<Status> end;
  std::atomic<bool> finished{false};

  std::string Bytes() {
    std::lock_guard lock(mutex);
    return bytes;
  }
  int Calls() {
    std::lock_guard lock(mutex);
    return calls;
  }
  bool Ended() {
    std::lock_guard lock(mutex);
    return end.has_value();
  }
};

LogFollower::Handle Follow(LogFollower& follower, const std::string& path, std::uint64_t offset,
                           Received& received, bool keep_going = true) {
  return follower.Subscribe(
      path, offset,
      [&received, keep_going](std::string_view chunk, std::uint64_t end_offset) {
        std::lock_guard lock(received.mutex);
        received.bytes += chunk;
        received.end_offsets.push_back(end_offset);
        received.chunk_sizes.push_back(chunk.size());
        ++received.calls;
        return keep_going;
      },
      [&received] { return received.finished.load(); },
      [&received](const Status& status) {
        std::lock_guard lock(received.mutex);
        received.end = status;
      });
}

TEST(LogFollowerTest, DeliversAppendedBytesInOrder) {
  TempDir dir;
  std::string path = dir / "build.log";
  Append(path, "line 0\n");
  LogFollower follower;
  EXPECT_TRUE(follower.UsesInotify());
  Received received;
  Follow(follower, path, 0, received);
  std::string expected = "line 0\n";
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == expected; })) << i;
    std::string line = "line " + std::to_string(i) + "\n";
    Append(path, line);
    expected += line;
  }
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == expected; }));
  std::lock_guard lock(received.mutex);
  // Each call's offset is the end of the bytes delivered so far.
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < received.end_offsets.size(); ++i) {
    total += received.chunk_sizes[i];
    EXPECT_EQ(received.end_offsets[i], total);
  }
  EXPECT_FALSE(received.end.has_value());
}

TEST(LogFollowerTest, ResumesFromAnOffsetInTheMiddle) {
  TempDir dir;
  std::string path = dir / "step.log";
  Append(path, "0123456789");
  LogFollower follower;
  Received received;
  Follow(follower, path, 4, received);
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "456789"; }));
  Append(path, "abc");
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "456789abc"; }));
  std::lock_guard lock(received.mutex);
  EXPECT_EQ(received.end_offsets.back(), 13u);
}

TEST(LogFollowerTest, EndsOnceFinishedAndEverythingWasDelivered) {
  TempDir dir;
  std::string path = dir / "step.log";
  Append(path, "start\n");
  LogFollower follower;
  Received received;
  Follow(follower, path, 0, received);
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "start\n"; }));
  // The last bytes are written just before the step ends: they still come before the end.
  Append(path, "last words\n");
  received.finished = true;
  follower.Wake();
  ASSERT_TRUE(AwaitCondition([&] { return received.Ended(); }));
  std::lock_guard lock(received.mutex);
  EXPECT_EQ(received.bytes, "start\nlast words\n");
  EXPECT_TRUE(received.end->has_value());
}

TEST(LogFollowerTest, WaitsForAFileCreatedLater) {
  TempDir dir;
  // Neither the file nor its directory exists yet (a queued build).
  std::string path = dir / "builds/b-1/logs/step.log";
  LogFollower follower;
  Received received;
  Follow(follower, path, 0, received);
  std::filesystem::create_directories(dir / "builds/b-1/logs");
  Append(path, "hello\n");
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "hello\n"; }));
  Append(path, "world\n");
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "hello\nworld\n"; }));
}

TEST(LogFollowerTest, AStepThatNeverWroteALogEndsAtOnceWhenFinished) {
  TempDir dir;
  LogFollower follower;
  Received received;
  received.finished = true;
  Follow(follower, dir / "skipped.log", 0, received);
  ASSERT_TRUE(AwaitCondition([&] { return received.Ended(); }));
  std::lock_guard lock(received.mutex);
  EXPECT_TRUE(received.end->has_value());
  EXPECT_EQ(received.calls, 0);
}

TEST(LogFollowerTest, AnUnreadableLogEndsWithAnError) {
  TempDir dir;
  std::filesystem::create_directories(dir / "a-directory.log");
  LogFollower follower;
  Received received;
  Follow(follower, dir / "a-directory.log", 0, received);
  ASSERT_TRUE(AwaitCondition([&] { return received.Ended(); }));
  std::lock_guard lock(received.mutex);
  ASSERT_FALSE(received.end->has_value());
  EXPECT_NE(received.end->error().find("a-directory.log"), std::string::npos);
}

TEST(LogFollowerTest, UnsubscribingStopsTheCalls) {
  TempDir dir;
  std::string path = dir / "step.log";
  Append(path, "one\n");
  LogFollower follower;
  Received gone;
  Received witness;
  LogFollower::Handle handle = Follow(follower, path, 0, gone);
  ASSERT_TRUE(AwaitCondition([&] { return gone.Bytes() == "one\n"; }));
  follower.Unsubscribe(handle);
  // Subscribed later, the witness is looked at after `gone` would have been: once it has the
  // new bytes, `gone` would have had them too.
  Follow(follower, path, 0, witness);
  Append(path, "two\n");
  ASSERT_TRUE(AwaitCondition([&] { return witness.Bytes() == "one\ntwo\n"; }));
  EXPECT_EQ(gone.Bytes(), "one\n");
  follower.Unsubscribe(handle);  // a second time: ignored
}

TEST(LogFollowerTest, ReturningFalseUnsubscribes) {
  TempDir dir;
  std::string path = dir / "step.log";
  Append(path, "one\n");
  LogFollower follower;
  Received once;
  Received witness;
  once.finished = witness.finished = true;
  Follow(follower, path, 0, once, /*keep_going=*/false);
  ASSERT_TRUE(AwaitCondition([&] { return once.Calls() == 1; }));
  Follow(follower, path, 0, witness);
  Append(path, "two\n");
  ASSERT_TRUE(AwaitCondition([&] { return witness.Ended(); }));
  EXPECT_EQ(once.Calls(), 1);
  EXPECT_FALSE(once.Ended());
}

TEST(LogFollowerTest, ChunksAreBounded) {
  TempDir dir;
  std::string path = dir / "big.log";
  std::string big;
  for (int i = 0; big.size() < 3 * LogFollower::kMaxChunk + 100; ++i) {
    big += "line " + std::to_string(i) + "\n";
  }
  Append(path, big);
  LogFollower follower;
  Received received;
  received.finished = true;
  Follow(follower, path, 0, received);
  ASSERT_TRUE(AwaitCondition([&] { return received.Ended(); }));
  std::lock_guard lock(received.mutex);
  EXPECT_EQ(received.bytes, big);
  EXPECT_GE(received.calls, 4);
  for (std::size_t size : received.chunk_sizes) EXPECT_LE(size, LogFollower::kMaxChunk);
}

TEST(LogFollowerTest, FiftySubscribersOnFiftyFiles) {
  TempDir dir;
  constexpr int kFiles = 50;
  LogFollower follower;
  std::vector<std::unique_ptr<Received>> received;
  for (int i = 0; i < kFiles; ++i) {
    received.push_back(std::make_unique<Received>());
    Follow(follower,
           dir / ("logs-" + std::to_string(i % 5) + "/step-" + std::to_string(i) + ".log"), 0,
           *received.back());
  }
  for (int i = 0; i < 5; ++i)
    std::filesystem::create_directories(dir / ("logs-" + std::to_string(i)));
  auto expected = [](int file, int lines) {
    std::string text;
    for (int line = 0; line < lines; ++line) text += fmt::format("{} {}\n", file, line);
    return text;
  };
  for (int line = 0; line < 10; ++line) {
    for (int i = 0; i < kFiles; ++i) {
      Append(dir / ("logs-" + std::to_string(i % 5) + "/step-" + std::to_string(i) + ".log"),
             fmt::format("{} {}\n", i, line));
    }
  }
  for (int i = 0; i < kFiles; ++i) received[i]->finished = true;
  follower.Wake();
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(AwaitCondition([&] { return received[i]->Ended(); })) << i;
    EXPECT_EQ(received[i]->Bytes(), expected(i, 10)) << i;
  }
}

TEST(LogFollowerTest, PollsWithoutInotify) {
  TempDir dir;
  std::string path = dir / "step.log";
  LogFollower follower({.use_inotify = false, .poll_interval = std::chrono::milliseconds(20)});
  EXPECT_FALSE(follower.UsesInotify());
  Received received;
  Follow(follower, path, 0, received);
  Append(path, "polled\n");
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "polled\n"; }));
  Append(path, "again\n");
  ASSERT_TRUE(AwaitCondition([&] { return received.Bytes() == "polled\nagain\n"; }));
  received.finished = true;
  ASSERT_TRUE(AwaitCondition([&] { return received.Ended(); }));
}

TEST(LogFollowerSseTest, Format) {
  EXPECT_EQ(SseEvent("", "12", "hello"), "id: 12\ndata: hello\n\n");
  EXPECT_EQ(SseEvent("end", "", ""), "event: end\ndata: \n\n");
  // Every line of the data gets its own data: field, whatever ends it.
  EXPECT_EQ(SseEvent("", "", "a\nb\r\nc\rd\n"), "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");
  // A newline in the name or id cannot add a field.
  EXPECT_EQ(SseEvent("x\nretry: 1", "1\r\nevent: y", "z"),
            "event: xretry: 1\nid: 1event: y\ndata: z\n\n");
}

TEST(LogFollowerSseTest, ParseLastEventId) {
  EXPECT_EQ(ParseLastEventId("1234"), 1234u);
  EXPECT_EQ(ParseLastEventId(""), 0u);
  EXPECT_EQ(ParseLastEventId("12x"), 0u);
  EXPECT_EQ(ParseLastEventId("-5"), 0u);
}

// What FollowLogEvents wrote: the events as a browser's EventSource reads them.
struct EventStream {
  std::mutex mutex;
  std::string text;
  bool closed = false;

  std::string Text() {
    std::lock_guard lock(mutex);
    return text;
  }
  bool Closed() {
    std::lock_guard lock(mutex);
    return closed;
  }
};

LogFollower::Handle FollowEvents(LogFollower& follower, const std::string& path,
                                 std::uint64_t resume, std::atomic<bool>& finished,
                                 EventStream& stream) {
  return FollowLogEvents(
      follower, path, resume, [&finished] { return finished.load(); },
      [&stream](std::string_view events, bool last) {
        std::lock_guard lock(stream.mutex);
        stream.text += events;
        stream.closed = last;
        return true;
      });
}

TEST(LogFollowerEventsTest, ChunksAsHtmlEventsWithOffsetsThenEnd) {
  TempDir dir;
  std::string path = dir / "step.log";
  Append(path, "\x1b[31mred <b>\x1b[0m\n");
  LogFollower follower;
  std::atomic<bool> finished = false;
  EventStream stream;
  FollowEvents(follower, path, 0, finished, stream);
  ASSERT_TRUE(AwaitCondition([&] { return !stream.Text().empty(); }));
  EXPECT_EQ(stream.Text(), "id: 17\ndata: <span class=\"f1\">red &lt;b&gt;</span>\ndata: \n\n");
  Append(path, "done\n");
  finished = true;
  follower.Wake();
  ASSERT_TRUE(AwaitCondition([&] { return stream.Closed(); }));
  EXPECT_EQ(stream.Text(),
            "id: 17\ndata: <span class=\"f1\">red &lt;b&gt;</span>\ndata: \n\n"
            "id: 22\ndata: done\ndata: \n\n"
            "event: end\nid: 22\ndata: \n\n");
}

TEST(LogFollowerEventsTest, ResumesAfterLastEventIdWithTheColoursSetBefore) {
  TempDir dir;
  std::string path = dir / "step.log";
  // 5 bytes of escape, then "red\n" (up to offset 9), then more red text.
  Append(path, "\x1b[31mred\nstill red\n");
  LogFollower follower;
  std::atomic<bool> finished = true;
  EventStream stream;
  FollowEvents(follower, path, ParseLastEventId("9"), finished, stream);
  ASSERT_TRUE(AwaitCondition([&] { return stream.Closed(); }));
  EXPECT_EQ(stream.Text(),
            "id: 19\ndata: <span class=\"f1\">still red\ndata: </span>\n\n"
            "event: end\nid: 19\ndata: \n\n");
}

}  // namespace
}  // namespace runner::serve
