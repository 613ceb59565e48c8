#include "runner/queue/dir_queue.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <vector>

#include "runner/atomic_file.h"
#include "runner/backoff.h"
#include "runner/fs.h"
#include "runner/sha256.h"

namespace runner::queue {

namespace {

namespace stdfs = std::filesystem;
using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kPoll{100};

std::int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string SeqName(std::int64_t seq) { return fmt::format("{:012}", seq); }

Result<Json> ReadJson(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return Fail(text.error());
  Json value = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_object()) return Fail(fmt::format("{}: not a JSON object", path));
  return value;
}

Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Fail(fmt::format("cannot move {} to {}: {}", from, to, ErrnoText(errno)));
  }
  return {};
}

// The sequence numbers of the `*.json` files in `dir`, in order.
std::vector<std::string> Messages(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() == 17 && name.ends_with(".json")) names.push_back(name.substr(0, 12));
  }
  std::ranges::sort(names);
  return names;
}

class DirectoryQueue : public MessageQueue {
 public:
  DirectoryQueue(std::string dir, int max_receives)
      : dir_(std::move(dir)), max_receives_(max_receives) {}

  std::string Describe() const override { return "file://" + dir_ + "/"; }

  Status Send(std::string_view body, std::string_view group, std::string_view dedup_id) override {
    auto lock = Lock();
    if (!lock) return Fail(lock.error());
    std::string mark = dir_ + "/dedup/" + Sha256Hex(dedup_id);
    UniqueFd fd(::open(mark.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      if (errno == EEXIST) return {};
      return Fail(fmt::format("cannot create {}: {}", mark, ErrnoText(errno)));
    }
    std::int64_t seq = NextSeq();
    if (auto written = WriteFileAtomic(dir_ + "/seq", std::to_string(seq)); !written) {
      ::unlink(mark.c_str());
      return written;
    }
    Json message = {{"group", group}, {"body", body}, {"receives", 0}};
    if (auto written = WriteFileAtomic(dir_ + "/ready/" + SeqName(seq) + ".json", message.dump(),
                                       /*sync=*/true, /*sync_directory=*/true);
        !written) {
      ::unlink(mark.c_str());
      return written;
    }
    return {};
  }

  Result<std::optional<Message>> Receive(std::chrono::seconds wait, std::chrono::seconds visibility,
                                         const std::function<bool()>& cancelled) override {
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      auto taken = TryReceive(visibility);
      if (!taken || *taken) return taken;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      if (!WaitUnlessCancelled(kPoll, cancelled)) return std::nullopt;
    }
  }

  Status ChangeVisibility(const std::string& receipt, std::chrono::seconds visibility) override {
    auto lock = Lock();
    if (!lock) return Fail(lock.error());
    auto seq = Holder(receipt);
    if (!seq) return Fail(seq.error());
    std::string held = dir_ + "/held/" + *seq;
    if (visibility.count() == 0) {
      ::unlink((held + ".lease").c_str());
      return Rename(held + ".json", dir_ + "/ready/" + *seq + ".json");
    }
    return WriteLease(*seq, receipt, visibility);
  }

  Status Delete(const std::string& receipt) override {
    auto lock = Lock();
    if (!lock) return Fail(lock.error());
    auto seq = Holder(receipt);
    if (!seq) return Fail(seq.error());
    std::string held = dir_ + "/held/" + *seq;
    if (::unlink((held + ".json").c_str()) != 0) {
      return Fail(fmt::format("cannot remove {}.json: {}", held, ErrnoText(errno)));
    }
    ::unlink((held + ".lease").c_str());
    return {};
  }

  Result<int> MaxReceives() override { return max_receives_; }

  Result<QueueDepth> Depth() override {
    auto lock = Lock();
    if (!lock) return Fail(lock.error());
    QueueDepth depth;
    depth.visible = static_cast<std::int64_t>(Messages(dir_ + "/ready").size());
    depth.in_flight = static_cast<std::int64_t>(Messages(dir_ + "/held").size());
    return depth;
  }

 private:
  Result<UniqueFd> Lock() const { return LockFile(dir_ + "/lock"); }

  // One past the counter and past every message the queue still holds, under the lock: a
  // counter lost or damaged (read as 0) must never lead to a message written over another.
  std::int64_t NextSeq() const {
    std::int64_t seq = 0;
    if (auto text = ReadFile(dir_ + "/seq")) {
      std::from_chars(text->data(), text->data() + text->size(), seq);
    }
    for (const char* held_in : {"/ready/", "/held/", "/dead/"}) {
      for (const std::string& name : Messages(dir_ + held_in)) {
        std::int64_t taken = 0;
        std::from_chars(name.data(), name.data() + name.size(), taken);
        seq = std::max(seq, taken);
      }
    }
    return seq + 1;
  }

  // The sequence number whose lease `receipt` still holds.
  Result<std::string> Holder(const std::string& receipt) const {
    std::string seq = receipt.substr(0, receipt.find(':'));
    auto lease = ReadJson(dir_ + "/held/" + seq + ".lease");
    if (seq.size() != 12 || !lease || (*lease)["receipt"] != receipt) {
      return Fail(
          fmt::format("{}: the message of this receipt is no longer held by it (its "
                      "visibility timeout ran out)",
                      Describe()));
    }
    return seq;
  }

  Status WriteLease(const std::string& seq, const std::string& receipt,
                    std::chrono::seconds visibility) const {
    Json lease = {
        {"receipt", receipt},
        {"until", NowMs() + std::chrono::duration_cast<milliseconds>(visibility).count()}};
    return WriteFileAtomic(dir_ + "/held/" + seq + ".lease", lease.dump());
  }

  // Under the lock: returns the messages whose lease ran out to ready/, then takes the first
  // ready message of a group with nothing held.
  Result<std::optional<Message>> TryReceive(std::chrono::seconds visibility) {
    auto lock = Lock();
    if (!lock) return Fail(lock.error());
    const std::string held_dir = dir_ + "/held/";
    const std::string ready_dir = dir_ + "/ready/";
    std::set<std::string> held_groups;
    for (const std::string& seq : Messages(held_dir)) {
      auto lease = ReadJson(held_dir + seq + ".lease");
      // No lease: its holder died between the rename and the lease; it is free.
      bool expired = !lease || !(*lease)["until"].is_number_integer() ||
                     (*lease)["until"].get<std::int64_t>() <= NowMs();
      if (expired) {
        ::unlink((held_dir + seq + ".lease").c_str());
        if (auto moved = Rename(held_dir + seq + ".json", ready_dir + seq + ".json"); !moved) {
          return Fail(moved.error());
        }
        continue;
      }
      auto message = ReadJson(held_dir + seq + ".json");
      if (!message) return Fail(message.error());
      held_groups.insert((*message)["group"].get<std::string>());
    }
    for (const std::string& seq : Messages(ready_dir)) {
      auto message = ReadJson(ready_dir + seq + ".json");
      if (!message) return Fail(message.error());
      std::string group = (*message)["group"].get<std::string>();
      if (held_groups.contains(group)) continue;
      int receives = (*message)["receives"].get<int>() + 1;
      if (receives > max_receives_) {
        if (auto moved = Rename(ready_dir + seq + ".json", dir_ + "/dead/" + seq + ".json");
            !moved) {
          return Fail(moved.error());
        }
        continue;
      }
      (*message)["receives"] = receives;
      if (auto written = WriteFileAtomic(ready_dir + seq + ".json", message->dump()); !written) {
        return Fail(written.error());
      }
      thread_local std::mt19937_64 random{std::random_device{}()};
      std::string receipt = fmt::format("{}:{:016x}", seq, random());
      if (auto leased = WriteLease(seq, receipt, visibility); !leased) {
        return Fail(leased.error());
      }
      if (auto moved = Rename(ready_dir + seq + ".json", held_dir + seq + ".json"); !moved) {
        return Fail(moved.error());
      }
      Message out;
      out.body = (*message)["body"].get<std::string>();
      out.receipt = std::move(receipt);
      out.receive_count = receives;
      return out;
    }
    return std::nullopt;
  }

  const std::string dir_;
  const int max_receives_;
};

}  // namespace

Result<std::unique_ptr<MessageQueue>> OpenDirectoryQueue(const std::string& dir, int max_receives) {
  for (const char* sub : {"/ready", "/held", "/dedup", "/dead"}) {
    std::error_code ec;
    stdfs::create_directories(dir + sub, ec);
    if (ec) return Fail(fmt::format("queue: cannot create {}{}: {}", dir, sub, ec.message()));
  }
  return std::unique_ptr<MessageQueue>(new DirectoryQueue(dir, std::max(1, max_receives)));
}

}  // namespace runner::queue
