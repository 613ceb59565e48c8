#include "runner/serve/log_follower.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <vector>

#include "runner/serve/ansi.h"
#include "runner/serve/pages.h"

namespace runner::serve {

namespace {

// A subscriber with a long backlog hands over this many chunks before the others get a turn.
constexpr int kChunksPerTurn = 16;

std::string Directory(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

struct LogFollower::Subscriber {
  Handle handle = 0;
  std::string path;
  std::uint64_t offset = 0;
  OnData on_data;
  IsFinished is_finished;
  OnEnd on_end;
  UniqueFd fd;
  int watch = -1;  // guarded by LogFollower::mutex_
  // Held while the subscriber's callbacks run, so that Unsubscribe can wait for them.
  std::mutex callback_mutex;
  bool cancelled = false;  // guarded by callback_mutex
};

LogFollower::LogFollower(Options options) : options_(options), buffer_(kMaxChunk, '\0') {
  if (options_.use_inotify) inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  thread_ = std::thread([this] { Run(); });
}

LogFollower::~LogFollower() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  Wake();
  thread_.join();
}

LogFollower::Handle LogFollower::Subscribe(std::string path, std::uint64_t offset, OnData on_data,
                                           IsFinished is_finished, OnEnd on_end) {
  auto subscriber = std::make_shared<Subscriber>();
  subscriber->path = std::move(path);
  subscriber->offset = offset;
  subscriber->on_data = std::move(on_data);
  subscriber->is_finished = std::move(is_finished);
  subscriber->on_end = std::move(on_end);
  Handle handle;
  {
    std::lock_guard lock(mutex_);
    handle = next_handle_++;
    subscriber->handle = handle;
    AddWatch(*subscriber);
    subscribers_.emplace(handle, std::move(subscriber));
  }
  Wake();
  return handle;
}

void LogFollower::Unsubscribe(Handle handle) {
  std::shared_ptr<Subscriber> subscriber;
  {
    std::lock_guard lock(mutex_);
    auto it = subscribers_.find(handle);
    if (it == subscribers_.end()) return;
    subscriber = it->second;
    RemoveWatch(*subscriber);
    subscribers_.erase(it);
  }
  if (std::this_thread::get_id() == thread_.get_id() && subscriber.get() == servicing_) {
    subscriber->cancelled = true;  // from its own callback: the lock is already held
    return;
  }
  std::lock_guard lock(subscriber->callback_mutex);  // waits for a callback that is running
  subscriber->cancelled = true;
}

void LogFollower::Wake() {
  std::uint64_t one = 1;
  // A full counter (never reached) or a failed write still leaves the thread polling.
  [[maybe_unused]] ssize_t written = ::write(wake_.get(), &one, sizeof one);
}

// REQUIRES: mutex_ held.
void LogFollower::AddWatch(Subscriber& subscriber) {
  if (!inotify_.valid() || subscriber.watch >= 0) return;
  // The directory is watched rather than the file, so a file created later is seen too.
  int watch = ::inotify_add_watch(inotify_.get(), Directory(subscriber.path).c_str(),
                                  IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
  if (watch < 0) return;  // no directory yet, or no watches left: polled meanwhile
  subscriber.watch = watch;
  ++watch_users_[watch];
}

// REQUIRES: mutex_ held.
void LogFollower::RemoveWatch(Subscriber& subscriber) {
  if (subscriber.watch < 0) return;
  auto it = watch_users_.find(subscriber.watch);
  if (it != watch_users_.end() && --it->second == 0) {
    ::inotify_rm_watch(inotify_.get(), subscriber.watch);
    watch_users_.erase(it);
  }
  subscriber.watch = -1;
}

void LogFollower::Remove(Handle handle) {
  std::lock_guard lock(mutex_);
  auto it = subscribers_.find(handle);
  if (it == subscribers_.end()) return;
  RemoveWatch(*it->second);
  subscribers_.erase(it);
}

bool LogFollower::Service(Subscriber& subscriber) {
  auto end = [&](const Status& status) {
    Remove(subscriber.handle);
    subscriber.cancelled = true;
    subscriber.on_end(status);
    return false;
  };
  // Asked before reading: whatever was written before the step ended is read below, so at the
  // end of the file nothing is left behind.
  bool finished = subscriber.is_finished();
  if (!subscriber.fd.valid()) {
    subscriber.fd.reset(::open(subscriber.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!subscriber.fd.valid()) {
      if (errno != ENOENT) {
        return end(Fail(fmt::format("cannot read {}: {}", subscriber.path, ErrnoText(errno))));
      }
      return finished ? end({}) : false;
    }
  }
  for (int turn = 0; turn < kChunksPerTurn; ++turn) {
    ssize_t n = ::pread(subscriber.fd.get(), buffer_.data(), buffer_.size(),
                        static_cast<off_t>(subscriber.offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return end(Fail(fmt::format("cannot read {}: {}", subscriber.path, ErrnoText(errno))));
    }
    if (n == 0) return finished ? end({}) : false;
    subscriber.offset += static_cast<std::uint64_t>(n);
    if (!subscriber.on_data(std::string_view(buffer_.data(), static_cast<std::size_t>(n)),
                            subscriber.offset)) {
      Remove(subscriber.handle);
      return false;
    }
    if (subscriber.cancelled) return false;  // unsubscribed from its own callback
  }
  return true;
}

void LogFollower::Run() {
  std::array<char, 4096> events;
  bool more = false;
  while (true) {
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      for (auto& [handle, subscriber] : subscribers_) {
        AddWatch(*subscriber);  // a directory made since the last look
        subscribers.push_back(subscriber);
      }
    }
    more = false;
    for (const auto& subscriber : subscribers) {
      std::lock_guard lock(subscriber->callback_mutex);
      if (subscriber->cancelled) continue;
      servicing_ = subscriber.get();
      more = Service(*subscriber) || more;
      servicing_ = nullptr;
    }
    subscribers.clear();

    std::array<pollfd, 2> fds = {{{wake_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}}};
    int timeout = more ? 0 : static_cast<int>(options_.poll_interval.count());
    ::poll(fds.data(), inotify_.valid() ? 2 : 1, timeout);
    // Every wake-up looks at every subscriber, so the events themselves need not be read
    // one by one: draining them is enough.
    std::uint64_t count;
    [[maybe_unused]] ssize_t wake_read = ::read(wake_.get(), &count, sizeof count);
    if (inotify_.valid()) {
      while (::read(inotify_.get(), events.data(), events.size()) > 0) {
      }
    }
  }
}

std::string SseEvent(std::string_view event_name, std::string_view id, std::string_view data) {
  auto field = [](std::string_view name, std::string_view value) {
    std::string line(name);
    line += ": ";
    for (char c : value) {
      if (c != '\r' && c != '\n') line += c;
    }
    return line + "\n";
  };
  std::string event;
  if (!event_name.empty()) event += field("event", event_name);
  if (!id.empty()) event += field("id", id);
  std::size_t begin = 0;
  while (true) {
    std::size_t end = data.find_first_of("\r\n", begin);
    event += "data: ";
    event += data.substr(begin, end - begin);
    event += '\n';
    if (end == std::string_view::npos) break;
    begin = end + (data.compare(end, 2, "\r\n") == 0 ? 2 : 1);
  }
  return event + "\n";
}

std::uint64_t ParseLastEventId(std::string_view header) {
  std::uint64_t offset = 0;
  auto [end, error] = std::from_chars(header.data(), header.data() + header.size(), offset);
  if (error != std::errc() || end != header.data() + header.size()) return 0;
  return offset;
}

LogFollower::Handle FollowLogEvents(LogFollower& follower, std::string path,
                                    std::uint64_t resume_offset,
                                    LogFollower::IsFinished is_finished,
                                    std::function<bool(std::string_view events, bool last)> write) {
  struct Stream {
    AnsiToHtml converter;
    std::uint64_t offset = 0;
    std::function<bool(std::string_view, bool)> write;
  };
  auto stream = std::make_shared<Stream>();
  stream->write = std::move(write);
  auto on_data = [stream, resume_offset](std::string_view chunk, std::uint64_t end_offset) {
    std::uint64_t start = end_offset - chunk.size();
    stream->offset = end_offset;
    if (start < resume_offset) {
      // Sent before the browser reconnected: converted for the state it leaves, not sent.
      auto seen =
          static_cast<std::size_t>(std::min<std::uint64_t>(resume_offset - start, chunk.size()));
      stream->converter.Feed(chunk.substr(0, seen));
      chunk.remove_prefix(seen);
      if (chunk.empty()) return true;
    }
    std::string html = stream->converter.Feed(chunk);
    if (html.empty()) return true;
    return stream->write(SseEvent("", std::to_string(end_offset), html), false);
  };
  auto on_end = [stream, resume_offset](const Status& status) {
    std::string id = std::to_string(std::max(stream->offset, resume_offset));
    std::string html = stream->converter.Finish();
    if (!status) html += "\n[" + HtmlEscape(status.error()) + "]\n";
    if (!html.empty() && !stream->write(SseEvent("", id, html), false)) return;
    stream->write(SseEvent("end", id, ""), true);
  };
  return follower.Subscribe(std::move(path), 0, std::move(on_data), std::move(is_finished),
                            std::move(on_end));
}

}  // namespace runner::serve
