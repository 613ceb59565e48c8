#include "runner/serve/build_queue.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "runner/atomic_file.h"
#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/utf8.h"

namespace runner::serve {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using State = QueueEntry::State;

constexpr std::size_t kMaxDeliveryLength = 128;
// An entry file's name is its seq in this many digits, then ".json".
constexpr std::size_t kSeqDigits = 12;

constexpr std::pair<State, std::string_view> kStateNames[] = {
    {State::kQueued, "queued"},   {State::kRunning, "running"},     {State::kFinished, "finished"},
    {State::kSkipped, "skipped"}, {State::kAbandoned, "abandoned"},
};

constexpr std::string_view kResults[] = {"success", "failed", "timed_out", "cancelled", "error"};

// The string members of an entry, in the order the file lists them.
constexpr std::pair<const char*, std::string QueueEntry::*> kStringFields[] = {
    {"id", &QueueEntry::id},
    {"repository", &QueueEntry::repository},
    {"project", &QueueEntry::project},
    {"branch", &QueueEntry::branch},
    {"ref", &QueueEntry::ref},
    {"event", &QueueEntry::event},
    {"before", &QueueEntry::before},
    {"after", &QueueEntry::after},
    {"default_branch", &QueueEntry::default_branch},
    {"delivery", &QueueEntry::delivery},
    {"trigger", &QueueEntry::trigger},
    {"rerun_of", &QueueEntry::rerun_of},
    {"result", &QueueEntry::result},
    {"reason", &QueueEntry::reason},
    {"enqueued_at", &QueueEntry::enqueued_at},
    {"started_at", &QueueEntry::started_at},
    {"finished_at", &QueueEntry::finished_at},
};

std::string Now() { return FormatTimestamp(std::chrono::system_clock::now()); }

std::string Errno(std::string_view what, const std::string& path) {
  return fmt::format("{} {}: {}", what, path, ErrnoText(errno));
}

bool IsDeliveryToken(std::string_view delivery) {
  if (delivery.empty() || delivery.size() > kMaxDeliveryLength) return false;
  auto alnum = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (!alnum(delivery.front())) return false;
  return std::all_of(delivery.begin(), delivery.end(), [&](char c) {
    return alnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

}  // namespace

Status CheckDelivery(std::string_view delivery) {
  if (IsDeliveryToken(delivery)) return {};
  return Fail(fmt::format(
      "delivery id refused: expected 1 to {} characters from [A-Za-z0-9._:-] starting with a "
      "letter or digit (GitHub sends a UUID), got {} bytes",
      kMaxDeliveryLength, delivery.size()));
}

Status CheckNewBuild(const NewBuild& build) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"repository", &build.repository}, {"project", &build.project},
      {"branch", &build.branch},         {"ref", &build.ref},
      {"event", &build.event},           {"before", &build.before},
      {"after", &build.after},           {"default_branch", &build.default_branch},
      {"trigger", &build.trigger},
  };
  for (const auto& [name, value] : fields) {
    if (!IsValidUtf8(*value)) {
      return Fail(fmt::format("build of {}: {} is not valid UTF-8", build.repository, name));
    }
  }
  for (const auto& [name, value] : {fields[0], fields[1], fields[2], fields[3], fields[6]}) {
    if (value->empty()) {
      return Fail(fmt::format("build of {}: {} is empty", build.repository, name));
    }
  }
  if (std::string project = SanitizeIdPart(build.project); project == "." || project == "..") {
    return Fail(fmt::format("build of {}: project '{}' cannot name a build", build.repository,
                            build.project));
  }
  return CheckDelivery(build.delivery);
}

QueueEntry EntryOf(const NewBuild& build) {
  QueueEntry entry;
  entry.repository = build.repository;
  entry.project = build.project;
  entry.branch = build.branch;
  entry.ref = build.ref;
  entry.event = build.event;
  entry.before = build.before;
  entry.after = build.after;
  entry.default_branch = build.default_branch;
  entry.delivery = build.delivery;
  entry.trigger = build.trigger;
  return entry;
}

QueueEntry RerunOf(const QueueEntry& original) {
  QueueEntry entry;  // numbered, timed and given its delivery when queued
  for (std::string QueueEntry::*field :
       {&QueueEntry::repository, &QueueEntry::project, &QueueEntry::branch, &QueueEntry::ref,
        &QueueEntry::event, &QueueEntry::before, &QueueEntry::after, &QueueEntry::default_branch,
        &QueueEntry::trigger}) {
    entry.*field = original.*field;
  }
  entry.rerun_of = original.id;
  return entry;
}

std::string RerunDelivery(const std::string& id, std::int64_t seq) {
  return fmt::format("rerun:{}:{}", id, seq);
}

std::string EntryToJson(const QueueEntry& entry) {
  Json json = Json::object();
  json["id"] = entry.id;  // first, for whoever reads the file; the loop below keeps its place
  json["seq"] = entry.seq;
  json["number"] = entry.number;
  json["state"] = std::string(StateName(entry.state));
  for (const auto& [name, member] : kStringFields) json[name] = entry.*member;
  return json.dump(2) + "\n";
}

Result<QueueEntry> EntryFromJson(std::string_view text, std::string_view where) {
  auto corrupt = [&](std::string_view what) {
    return Fail(
        fmt::format("corrupt queue entry {}: {} (the build it held is not lost: repair "
                    "or remove it and start again)",
                    where, what));
  };
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return corrupt("not JSON (cut short?)");
  if (!json.is_object()) return corrupt("not a JSON object");
  QueueEntry entry;
  for (const auto& [name, member] : kStringFields) {
    auto it = json.find(name);
    if (it == json.end() || !it->is_string()) {
      return corrupt(fmt::format("'{}' missing or not a string", name));
    }
    entry.*member = it->get<std::string>();
  }
  for (auto [name, member] :
       {std::pair{"seq", &QueueEntry::seq}, std::pair{"number", &QueueEntry::number}}) {
    auto it = json.find(name);
    if (it == json.end() || !it->is_number_integer()) {
      return corrupt(fmt::format("'{}' missing or not an integer", name));
    }
    entry.*member = it->get<std::int64_t>();
  }
  auto state = json.find("state");
  if (state == json.end() || !state->is_string()) {
    return corrupt("'state' missing or not a string");
  }
  const std::string state_name = state->get<std::string>();
  const auto* known = std::find_if(std::begin(kStateNames), std::end(kStateNames),
                                   [&](const auto& pair) { return pair.second == state_name; });
  if (known == std::end(kStateNames)) return corrupt(fmt::format("unknown state '{}'", state_name));
  entry.state = known->first;
  if (entry.id.empty()) return corrupt("'id' is empty");
  return entry;
}

nlohmann::json EntryRecord(const QueueEntry& entry, std::string_view status) {
  using nlohmann::json;
  auto time = [](const std::string& text) { return text.empty() ? json(nullptr) : json(text); };
  return json{{"build",
               {{"project", entry.project},
                {"branch", entry.branch},
                {"commit", entry.after},
                {"number", std::to_string(entry.number)},
                {"id", entry.id},
                {"event", entry.event},
                {"trigger", entry.trigger}}},
              {"status", status},
              {"started", time(entry.started_at)},
              {"finished", time(entry.finished_at)},
              {"duration_s", nullptr},
              {"steps", json::array()}};
}

namespace {

std::string EntryFileName(std::int64_t seq) { return fmt::format("{:0{}}.json", seq, kSeqDigits); }

// The seq an entry file's name spells, or nullopt for any other name.
std::optional<std::int64_t> SeqOfFileName(std::string_view name) {
  if (name.size() != kSeqDigits + 5 || !name.ends_with(".json")) return std::nullopt;
  std::int64_t seq = 0;
  for (char c : name.substr(0, kSeqDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + (c - '0');
  }
  if (seq == 0) return std::nullopt;
  return seq;
}

Result<QueueEntry> ParseEntry(const std::string& path, std::int64_t seq) {
  Result<std::string> text = ReadFile(path);
  if (!text) return Fail(text.error());
  Result<QueueEntry> entry = EntryFromJson(*text, path);
  if (entry && entry->seq != seq) {
    return Fail(fmt::format("corrupt queue entry {}: 'seq' is {}, the name says {}", path,
                            entry->seq, seq));
  }
  return entry;
}

// The names in `dir`, read without exceptions.
Result<std::vector<std::string>> ListNames(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return Fail(fmt::format("cannot list {}: {}", dir, ec.message()));
  return names;
}

Status SyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) return Fail(Errno("cannot sync directory", dir));
  return {};
}

}  // namespace

std::string_view StateName(QueueEntry::State state) {
  for (const auto& [value, name] : kStateNames) {
    if (value == state) return name;
  }
  return "unknown";
}

BuildQueue::BuildQueue(std::string dir, UniqueFd lock)
    : dir_(std::move(dir)), lock_(std::move(lock)) {}

Result<std::unique_ptr<BuildQueue>> BuildQueue::Open(const std::string& dir) {
  std::error_code ec;
  for (const char* sub : {"entries", "numbers", "deliveries"}) {
    fs::create_directories(fs::path(dir) / sub, ec);
    if (ec) return Fail(fmt::format("cannot create {}/{}: {}", dir, sub, ec.message()));
  }
  std::string lock_path = dir + "/lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid()) return Fail(Errno("cannot open", lock_path));
  while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Fail(fmt::format("build queue {} is in use by another runner serve ({} is locked)",
                              dir, lock_path));
    }
    if (errno != EINTR) return Fail(Errno("cannot lock", lock_path));
  }
  // The subdirectories themselves must survive a crash with the first entry.
  if (Status synced = SyncDirectory(dir); !synced) return Fail(synced.error());
  std::unique_ptr<BuildQueue> queue(new BuildQueue(dir, std::move(lock)));
  if (Status loaded = queue->Load(); !loaded) return Fail(loaded.error());
  return queue;
}

Status BuildQueue::Load() {
  std::lock_guard<std::mutex> hold(mutex_);
  const std::string entries_dir = dir_ + "/entries";
  Result<std::vector<std::string>> names = ListNames(entries_dir);
  if (!names) return Fail(names.error());
  for (const std::string& name : *names) {
    const std::string path = entries_dir + "/" + name;
    if (name.starts_with(".")) {
      // The temporary file of a write the server did not live to commit: never an entry.
      ::unlink(path.c_str());
      continue;
    }
    std::optional<std::int64_t> seq = SeqOfFileName(name);
    if (!seq) {
      return Fail(fmt::format("unexpected file {} in the build queue (entries are named like {})",
                              path, EntryFileName(1)));
    }
    Result<QueueEntry> entry = ParseEntry(path, *seq);
    if (!entry) return Fail(entry.error());
    if (auto [it, fresh] = ids_.emplace(entry->id, *seq); !fresh) {
      return Fail(fmt::format("corrupt build queue {}: build id {} in both {} and {}", dir_,
                              entry->id, EntryFileName(it->second), name));
    }
    deliveries_.emplace(entry->delivery, *seq);
    if (entry->state == State::kQueued) queued_.insert(*seq);
    if (entry->state == State::kRunning) running_.insert(*seq);
    last_seq_ = std::max(last_seq_, *seq);
    entries_.emplace(*seq, std::move(*entry));
  }

  Result<std::vector<std::string>> marks = ListNames(dir_ + "/deliveries");
  if (!marks) return Fail(marks.error());
  for (std::string& mark : *marks) deliveries_.emplace(std::move(mark), 0);

  for (std::int64_t seq : std::vector<std::int64_t>(running_.begin(), running_.end())) {
    QueueEntry entry = entries_.at(seq);
    entry.state = State::kAbandoned;
    entry.reason = fmt::format(
        "runner serve stopped while the build ran (started {}); not run again, since its "
        "build id may already have a record: rerun it for a new build",
        entry.started_at);
    entry.finished_at = Now();
    if (Status persisted = Persist(entry); !persisted) return persisted;
    running_.erase(seq);
    abandoned_at_open_.push_back(entry);
    entries_[seq] = std::move(entry);
  }

  // Finishes the supersession a crash cut short: each queued push skips what is queued before
  // it on its ref, as Enqueue does.
  for (std::int64_t seq : std::vector<std::int64_t>(queued_.begin(), queued_.end())) {
    if (!queued_.contains(seq) || !entries_.at(seq).rerun_of.empty()) continue;
    if (Result<std::vector<QueueEntry>> skipped = Supersede(entries_.at(seq)); !skipped) {
      return Fail(skipped.error());
    }
  }
  return {};
}

Status BuildQueue::Persist(const QueueEntry& entry) const {
  return WriteFileAtomic(dir_ + "/entries/" + EntryFileName(entry.seq), EntryToJson(entry),
                         /*sync=*/true, /*sync_directory=*/true);
}

Result<QueueEntry> BuildQueue::Add(QueueEntry entry) {
  const std::string project = SanitizeIdPart(entry.project);
  const std::string counter = dir_ + "/numbers/" + project;
  if (std::error_code ec; fs::create_directory(counter, ec)) {
    // A new project's directory must survive a crash with its first number.
    if (Status synced = SyncDirectory(dir_ + "/numbers"); !synced) return Fail(synced.error());
  } else if (ec) {
    return Fail(fmt::format("cannot create {}: {}", counter, ec.message()));
  }
  // Two projects can spell the same id ("a" on branch "b-1", "a-b" on "1"): such a number is
  // passed over, so that no two entries share a build id.
  do {
    Result<std::int64_t> number = NextBuildNumber(counter);
    if (!number) return Fail(number.error());
    entry.number = *number;
    entry.id = BuildId(entry.project, entry.branch, std::to_string(entry.number));
  } while (ids_.contains(entry.id));
  entry.seq = ++last_seq_;
  if (!entry.rerun_of.empty()) entry.delivery = RerunDelivery(entry.rerun_of, entry.seq);
  entry.state = State::kQueued;
  entry.enqueued_at = Now();
  if (Status persisted = Persist(entry); !persisted) return Fail(persisted.error());
  ids_.emplace(entry.id, entry.seq);
  deliveries_.emplace(entry.delivery, entry.seq);
  queued_.insert(entry.seq);
  entries_.emplace(entry.seq, entry);
  return entry;
}

Result<std::vector<QueueEntry>> BuildQueue::Supersede(const QueueEntry& entry) {
  std::vector<QueueEntry> skipped;
  std::string error;
  for (auto it = queued_.begin(); it != queued_.end() && *it < entry.seq;) {
    QueueEntry& older = entries_.at(*it);
    if (older.repository != entry.repository || older.ref != entry.ref) {
      ++it;
      continue;
    }
    older.state = State::kSkipped;
    older.reason = "superseded by " + entry.id;
    older.finished_at = Now();
    // Skipped in memory even if the write fails: Open skips it again from the newer entry.
    if (Status persisted = Persist(older); !persisted && error.empty()) error = persisted.error();
    skipped.push_back(older);
    it = queued_.erase(it);
  }
  if (!error.empty()) return Fail(error);
  return skipped;
}

Result<Enqueued> BuildQueue::Enqueue(const NewBuild& build) {
  if (Status valid = CheckNewBuild(build); !valid) return Fail(valid.error());
  std::lock_guard<std::mutex> hold(mutex_);
  Enqueued out;
  if (auto seen = deliveries_.find(build.delivery); seen != deliveries_.end()) {
    out.duplicate = true;
    if (seen->second != 0) out.entry = entries_.at(seen->second);
    return out;
  }
  Result<QueueEntry> added = Add(EntryOf(build));
  if (!added) return Fail(added.error());
  out.entry = std::move(*added);
  Result<std::vector<QueueEntry>> skipped = Supersede(out.entry);
  if (!skipped) {
    return Fail(fmt::format("build {} is queued, but recording what it supersedes failed: {}",
                            out.entry.id, skipped.error()));
  }
  out.superseded = std::move(*skipped);
  for (std::int64_t seq : running_) {
    const QueueEntry& running = entries_.at(seq);
    if (running.repository == out.entry.repository && running.ref == out.entry.ref) {
      out.running_same_branch.push_back(running);
    }
  }
  return out;
}

Result<bool> BuildQueue::MarkDelivery(const std::string& delivery) {
  if (Status valid = CheckDelivery(delivery); !valid) return Fail(valid.error());
  std::lock_guard<std::mutex> hold(mutex_);
  if (deliveries_.contains(delivery)) return false;
  const std::string marks_dir = dir_ + "/deliveries";
  const std::string path = marks_dir + "/" + delivery;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Fail(Errno("cannot create", path));
  Status synced =
      ::fsync(fd.get()) == 0 ? SyncDirectory(marks_dir) : Status(Fail(Errno("cannot sync", path)));
  if (!synced) {
    // Not durable, so not a mark: removed, so that a retry can create it again.
    ::unlink(path.c_str());
    return Fail(synced.error());
  }
  deliveries_.emplace(delivery, 0);
  return true;
}

Result<std::optional<QueueEntry>> BuildQueue::StartNext() {
  std::lock_guard<std::mutex> hold(mutex_);
  if (queued_.empty()) return std::optional<QueueEntry>();
  std::int64_t seq = *queued_.begin();
  QueueEntry entry = entries_.at(seq);
  entry.state = State::kRunning;
  entry.started_at = Now();
  // Persisted before it is handed out: a build that may have run is never started again.
  if (Status persisted = Persist(entry); !persisted) return Fail(persisted.error());
  queued_.erase(seq);
  running_.insert(seq);
  entries_[seq] = entry;
  return std::optional<QueueEntry>(std::move(entry));
}

Status BuildQueue::Finish(const std::string& id, std::string result, std::string reason) {
  if (std::find(std::begin(kResults), std::end(kResults), result) == std::end(kResults)) {
    return Fail(
        fmt::format("cannot finish build {}: unknown result '{}' (expected success, "
                    "failed, timed_out, cancelled or error)",
                    id, MakeValidUtf8(result)));
  }
  std::lock_guard<std::mutex> hold(mutex_);
  QueueEntry* entry = FindLocked(id);
  if (entry == nullptr) return Fail(fmt::format("cannot finish build {}: not in the queue", id));
  if (entry->state != State::kRunning) {
    return Fail(
        fmt::format("cannot finish build {}: it is {}, not running", id, StateName(entry->state)));
  }
  entry->state = State::kFinished;
  entry->result = std::move(result);
  entry->reason = MakeValidUtf8(reason);
  entry->finished_at = Now();
  running_.erase(entry->seq);
  return Persist(*entry);
}

Result<QueueEntry> BuildQueue::Rerun(const std::string& id) {
  std::lock_guard<std::mutex> hold(mutex_);
  const QueueEntry* original = FindLocked(id);
  if (original == nullptr) return Fail(fmt::format("cannot rerun build {}: not in the queue", id));
  if (original->state == State::kQueued) {
    return Fail(fmt::format("cannot rerun build {}: it is still queued", id));
  }
  return Add(RerunOf(*original));
}

Status BuildQueue::Skip(const std::string& id, std::string reason) {
  std::lock_guard<std::mutex> hold(mutex_);
  QueueEntry* found = FindLocked(id);
  if (found == nullptr) return Fail(fmt::format("cannot skip build {}: not in the queue", id));
  if (found->state != State::kQueued) {
    return Fail(
        fmt::format("cannot skip build {}: it is {}, not queued", id, StateName(found->state)));
  }
  QueueEntry entry = *found;
  entry.state = State::kSkipped;
  entry.reason = MakeValidUtf8(reason);
  entry.finished_at = Now();
  // Still queued if this cannot be written: after a restart it would run after all.
  if (Status persisted = Persist(entry); !persisted) return persisted;
  queued_.erase(entry.seq);
  *found = std::move(entry);
  return {};
}

std::optional<QueueEntry> BuildQueue::Find(const std::string& id) const {
  std::lock_guard<std::mutex> hold(mutex_);
  const QueueEntry* entry = FindLocked(id);
  if (entry == nullptr) return std::nullopt;
  return *entry;
}

std::vector<QueueEntry> BuildQueue::List(std::size_t limit) const {
  std::lock_guard<std::mutex> hold(mutex_);
  std::vector<QueueEntry> out;
  for (auto it = entries_.rbegin(); it != entries_.rend() && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::size_t BuildQueue::queued() const {
  std::lock_guard<std::mutex> hold(mutex_);
  return queued_.size();
}

std::size_t BuildQueue::running() const {
  std::lock_guard<std::mutex> hold(mutex_);
  return running_.size();
}

QueueEntry* BuildQueue::FindLocked(const std::string& id) {
  auto it = ids_.find(id);
  return it == ids_.end() ? nullptr : &entries_.at(it->second);
}

const QueueEntry* BuildQueue::FindLocked(const std::string& id) const {
  auto it = ids_.find(id);
  return it == ids_.end() ? nullptr : &entries_.at(it->second);
}

}  // namespace runner::serve
