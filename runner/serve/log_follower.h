// Following step logs while they grow (STATE/builds/ID/logs/STEP.log, written live by the
// build), and serving them to the build page as server-sent events.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "runner/fs.h"
#include "runner/result.h"

namespace runner::serve {

// Delivers the bytes appended to files, in order, to any number of subscribers, from one
// background thread. It wakes on inotify events for the files' directories; where inotify is
// not available (or a directory does not exist yet, or Options::use_inotify is false) it
// looks every poll_interval instead, and it looks then in any case to check is_finished.
//
// All callbacks of all subscribers run on that thread, one at a time: they must not block (a
// server queues the bytes for its connection). A callback may call Subscribe and Unsubscribe.
// Thread-safe.
class LogFollower {
 public:
  using Handle = std::uint64_t;
  // New bytes of the file, at most kMaxChunk of them, and the file offset just past them.
  // Returning false unsubscribes (no further call, on_end neither).
  using OnData = std::function<bool(std::string_view chunk, std::uint64_t end_offset)>;
  // Whether the file is complete: the step that writes it has ended.
  using IsFinished = std::function<bool()>;
  // Called once, last: with success when is_finished held and every byte was delivered (also
  // when the file never came to exist), or with an error naming the file when it cannot be
  // read. The subscription is then gone.
  using OnEnd = std::function<void(const Status& status)>;

  static constexpr std::size_t kMaxChunk = 64 * 1024;

  struct Options {
    bool use_inotify = true;
    std::chrono::milliseconds poll_interval{250};
  };

  LogFollower() : LogFollower(Options{}) {}
  explicit LogFollower(Options options);
  // Stops the thread; subscribers still there get no further call.
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Follows `path` from byte `offset`. A file that does not exist yet is waited for.
  Handle Subscribe(std::string path, std::uint64_t offset, OnData on_data, IsFinished is_finished,
                   OnEnd on_end);
  // Ends a subscription: once this returns, none of its callbacks runs or will run. A handle
  // that has ended already is ignored.
  void Unsubscribe(Handle handle);
  // Looks at every subscriber now rather than at the next poll: call it when a step ends.
  void Wake();
  // Whether inotify is in use (false: polling alone).
  bool UsesInotify() const { return inotify_.valid(); }

 private:
  struct Subscriber;

  void Run();
  void AddWatch(Subscriber& subscriber);
  void RemoveWatch(Subscriber& subscriber);
  // Reads and delivers what is new; true when more may be waiting right away.
  bool Service(Subscriber& subscriber);
  void Remove(Handle handle);

  const Options options_;
  UniqueFd inotify_;
  UniqueFd wake_;  // an eventfd
  std::mutex mutex_;
  std::map<Handle, std::shared_ptr<Subscriber>> subscribers_;  // guarded by mutex_
  std::map<int, int> watch_users_;   // inotify watch -> subscribers using it; guarded by mutex_
  Handle next_handle_ = 1;           // guarded by mutex_
  bool stop_ = false;                // guarded by mutex_
  Subscriber* servicing_ = nullptr;  // the thread's own: whose callbacks are running
  std::string buffer_;               // the thread's own
  std::thread thread_;
};

// One server-sent event: `event: NAME` (left out when empty), `id: ID` (left out when empty),
// a `data:` line per line of `data` (split at CR LF, CR and LF, as EventSource splits them; at
// least one, so that an event with empty data is still dispatched), and the blank line that
// ends it. CR and LF in the name or id are dropped: they would start fields of their own.
std::string SseEvent(std::string_view event_name, std::string_view id, std::string_view data);

// The byte offset in a Last-Event-ID header (as FollowLogEvents writes ids); 0 when the header
// is empty or not a number.
std::uint64_t ParseLastEventId(std::string_view header);

// Serves /events/ID/STEP: follows the log at `path` and gives `write` whole events
// to send. Each chunk becomes one unnamed event whose data is the chunk as HTML (AnsiToHtml)
// and whose id is the byte offset reached; a log that cannot be read gets one more such event
// with the reason. Last comes an `end` event, with `last` true: close the stream after it.
//
// A browser that reconnects sends the last id it got as Last-Event-ID: pass
// ParseLastEventId(header) as `resume_offset`. The log is then converted from its start (so
// colours and partly written characters come out as before) but only what lies past the
// offset is sent.
//
// `write` returning false (the client has gone, or too much is queued for it) unsubscribes.
// The callbacks run on the follower's thread (see LogFollower): `write` must not block.
LogFollower::Handle FollowLogEvents(LogFollower& follower, std::string path,
                                    std::uint64_t resume_offset,
                                    LogFollower::IsFinished is_finished,
                                    std::function<bool(std::string_view events, bool last)> write);

}  // namespace runner::serve
