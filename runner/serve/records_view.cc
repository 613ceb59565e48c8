#include "runner/serve/records_view.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "runner/fs.h"

namespace runner::serve {

namespace {

using json = nlohmann::json;
using worker::Records;

// How often followed logs are brought up to date: the workers ship theirs every log_interval.
constexpr auto kPoll = std::chrono::seconds(1);

}  // namespace

std::string EntryName(const std::string& id) { return Records::BuildName(id, "entry.json"); }

Result<std::optional<QueueEntry>> FindEntry(Records& records, const std::string& id) {
  const std::string name = EntryName(id);
  auto text = records.store().Find(name);
  if (!text) return Fail(text.error());
  if (!*text) return std::optional<QueueEntry>();
  auto entry = EntryFromJson(**text, records.store().UrlOf(name));
  if (!entry) return Fail(entry.error());
  return std::optional(std::move(*entry));
}

Status PutEntry(Records& records, const QueueEntry& entry) {
  auto put = records.store().Put(EntryName(entry.id), EntryToJson(entry), "application/json");
  if (!put) return Fail(put.error());
  return {};
}

RecordsView::RecordsView(worker::Records& records, std::string cache_dir, LogFollower& follower)
    : records_(records),
      cache_dir_(std::move(cache_dir)),
      follower_(follower),
      poll_(PeriodicThread::Clock::now(), [this] {
        Poll();
        return std::optional(PeriodicThread::Clock::now() + kPoll);
      }) {}

std::optional<json> RecordsView::ReadJson(const std::string& name) {
  auto text = records_.store().Find(name);
  if (!text || !*text) return std::nullopt;
  json value = json::parse(**text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_object()) return std::nullopt;
  return value;
}

std::optional<json> RecordsView::Build(const std::string& id) {
  // An entry that cannot be read shows the build as its other records do.
  std::optional<QueueEntry> entry;
  if (auto found = FindEntry(records_, id)) entry = std::move(*found);
  std::optional<json> record = ReadJson(Records::BuildName(id, "report.json"));
  auto attempt = records_.LatestAttempt(id);
  if (!record && attempt && *attempt > 0) {
    record = ReadJson(Records::RunName(id, *attempt, "live.json"));
    if (ReadJson(Records::RunName(id, *attempt, "abandoned.json"))) {
      if (!record) record = json::object();
      (*record)["status"] = "abandoned";
    }
  }
  if (!record && entry) record = EntryRecord(*entry, "queued");
  if (!record) return std::nullopt;
  // Asked to stop, not yet stopped: the worker that takes it (or builds it, within a
  // log_interval) records it cancelled. Until then the page says so, with the reason.
  const std::string status = record->value("status", "");
  if (status == "queued" || status == "running") {
    if (auto mark = records_.CancelRequest(id); mark && *mark) {
      (*record)["status"] = "cancelling";
      (*record)["reason"] = **mark;
    }
  }
  if (entry) (*record)["repository"] = entry->repository;
  if (attempt && *attempt > 0) (*record)["attempt"] = *attempt;
  return record;
}

Result<std::vector<json>> RecordsView::Builds(std::size_t limit) {
  auto ids = records_.BuildIds(limit);
  if (!ids) return Fail(ids.error());
  std::vector<json> builds;
  for (auto it = ids->rbegin(); it != ids->rend(); ++it) {
    std::optional<json> build = Build(*it);
    if (!build) continue;  // a number whose build was never queued
    build->erase("steps");
    builds.push_back(std::move(*build));
  }
  return builds;
}

std::optional<std::string> RecordsView::Log(const std::string& id, const std::string& step) {
  const std::string whole = Records::BuildName(id, "logs/" + step + ".log");
  if (auto text = records_.store().Find(whole); text && *text) return std::move(**text);
  auto attempt = records_.LatestAttempt(id);
  if (!attempt || *attempt == 0) return std::nullopt;
  const std::string prefix = Records::LogChunkPrefix(id, *attempt, step);
  auto names = records_.store().List(prefix);
  if (!names || names->empty()) return std::nullopt;
  std::string text;
  for (const std::string& name : *names) {
    auto chunk = records_.store().Get(name);
    if (!chunk) return std::nullopt;
    text += *chunk;
  }
  return text;
}

std::string RecordsView::Follow(const std::string& id, const std::string& step) {
  std::lock_guard lock(mutex_);
  Followed& followed = followed_[{id, step}];
  if (followed.path.empty()) {
    followed.path = fmt::format("{}/{}/{}.log", cache_dir_, id, step);
    std::error_code ec;
    std::filesystem::create_directories(cache_dir_ + "/" + id, ec);
    ::truncate(followed.path.c_str(), 0);
    poll_.Wake();
  }
  return followed.path;
}

bool RecordsView::Complete(const std::string& id, const std::string& step) {
  std::lock_guard lock(mutex_);
  auto it = followed_.find({id, step});
  return it != followed_.end() && it->second.complete;
}

void RecordsView::Poll() {
  std::vector<std::pair<std::pair<std::string, std::string>, Followed>> work;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, followed] : followed_) {
      if (!followed.complete) work.emplace_back(key, followed);
    }
  }
  for (auto& [key, followed] : work) Update(key.first, key.second, followed);
  std::lock_guard lock(mutex_);
  for (auto& [key, followed] : work) followed_[key] = followed;
  if (!work.empty()) follower_.Wake();
}

void RecordsView::Update(const std::string& id, const std::string& step, Followed& followed) {
  // The state is read before the chunks are listed: a step seen ended has shipped them all.
  auto published = records_.store().Stat(Records::BuildName(id, "report.json"));
  auto attempt = records_.LatestAttempt(id);
  if (!published || !attempt) return;  // the store is away: next time
  if (*attempt != followed.attempt) {
    // A new attempt builds from the start.
    ::truncate(followed.path.c_str(), 0);
    followed.attempt = *attempt;
    followed.chunks = 0;
  }
  bool ended = published->has_value();
  if (!ended && *attempt > 0) {
    if (ReadJson(Records::RunName(id, *attempt, "abandoned.json"))) ended = true;
    if (std::optional<json> live = ReadJson(Records::RunName(id, *attempt, "live.json"))) {
      for (const json& entry : (*live)["steps"]) {
        if (entry["id"] == step) {
          ended = ended || (entry["status"] != "running" && entry["status"] != "pending");
        }
      }
    }
  }
  UniqueFd fd(::open(followed.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return;
  if (*attempt > 0) {
    auto names = records_.store().List(Records::LogChunkPrefix(id, *attempt, step));
    if (!names) return;
    for (std::size_t i = static_cast<std::size_t>(followed.chunks); i < names->size(); ++i) {
      auto chunk = records_.store().Get((*names)[i]);
      if (!chunk || !WriteAll(fd.get(), *chunk)) return;
      ++followed.chunks;
    }
  }
  if (ended && followed.chunks == 0) {
    // Published before anyone followed it, or built without chunks: the whole log.
    if (auto whole = Log(id, step); whole && !WriteAll(fd.get(), *whole)) return;
  }
  followed.complete = ended;
}

}  // namespace runner::serve
