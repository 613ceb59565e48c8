#include "runner/deploy/ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

namespace runner::deploy {

namespace {

using Json = nlohmann::ordered_json;

// The ledger's own format; an entry of another version is refused, not guessed at.
constexpr int kLedgerVersion = 1;
constexpr std::string_view kPausedName = "paused.json";
constexpr std::string_view kJson = ".json";
constexpr std::string_view kContentType = "application/json";

constexpr std::array<std::pair<DeployOutcome, std::string_view>, 6> kOutcomes = {{
    {DeployOutcome::kSuccess, "success"},
    {DeployOutcome::kFailed, "failed"},
    {DeployOutcome::kCancelled, "cancelled"},
    {DeployOutcome::kNoChange, "no-change"},
    {DeployOutcome::kPaused, "paused"},
    {DeployOutcome::kResumed, "resumed"},
}};

bool IsEvent(DeployOutcome outcome) {
  return outcome == DeployOutcome::kPaused || outcome == DeployOutcome::kResumed;
}

// What a deploy id names after its time: the build, or "pause" and "resume".
std::string_view IdSubject(const LedgerEntry& entry) {
  switch (entry.outcome) {
    case DeployOutcome::kPaused:
      return "pause";
    case DeployOutcome::kResumed:
      return "resume";
    default:
      return entry.build_id;
  }
}

bool IsLive(DeployOutcome outcome) {
  return outcome == DeployOutcome::kSuccess || outcome == DeployOutcome::kNoChange;
}

// The loader's rule for environment names, checked again: whatever a caller or a file says, an
// environment is one segment of the names the ledger reads and writes.
Status CheckEnvironment(std::string_view env) {
  bool ok = !env.empty() && env[0] >= 'a' && env[0] <= 'z' && std::ranges::all_of(env, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (ok) return {};
  return Fail(
      fmt::format("'{}' is not an environment name: use lowercase letters, digits, '_' "
                  "and '-', starting with a letter",
                  env));
}

// A build id as SPEC section 4 makes them: [A-Za-z0-9._-] only.
bool IsBuildId(std::string_view id) {
  return !id.empty() && std::ranges::all_of(id, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// FormatTimestamp's form, and only that: whatever reads back differently is refused.
std::optional<WallTime> ParseTimestamp(const std::string& text) {
  struct tm parts = {};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &parts);
  if (end == nullptr || text.size() != 24 || end != text.c_str() + 19) return std::nullopt;
  int millis = 0;
  for (size_t i = 20; i < 23; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    millis = millis * 10 + (text[i] - '0');
  }
  WallTime time =
      std::chrono::system_clock::from_time_t(::timegm(&parts)) + std::chrono::milliseconds(millis);
  if (FormatTimestamp(time) != text) return std::nullopt;
  return time;
}

// "2026-12-01T13:05:01Z": FormatTimestamp to the second, for people.
std::string Second(WallTime time) { return FormatTimestamp(time).substr(0, 19) + "Z"; }

std::string EntryName(const std::string& env, const std::string& deploy_id) {
  return fmt::format("{}/{}{}", env, deploy_id, kJson);
}

std::string PausedName(const std::string& env) { return fmt::format("{}/{}", env, kPausedName); }

std::string Render(const Json& json) {
  // Messages and outputs come from AWS and users: replace what is not UTF-8 rather than throw.
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string EntryJson(const LedgerEntry& entry) {
  Json outputs = Json::object();
  for (const auto& [key, value] : entry.outputs) outputs[key] = value;
  Json json = {{"version", kLedgerVersion},
               {"env", entry.env},
               {"deploy_id", entry.deploy_id},
               {"build_id", entry.build_id},
               {"project", entry.project},
               {"branch", entry.branch},
               {"commit", entry.commit},
               {"who", entry.who},
               {"started", FormatTimestamp(entry.started)},
               {"finished", FormatTimestamp(entry.finished)},
               {"outcome", OutcomeName(entry.outcome)},
               {"changed", entry.changed},
               {"outputs", std::move(outputs)},
               {"message", entry.message}};
  return Render(json);
}

// ENV/paused.json after the pause or resume `event`.
std::string StateJson(const LedgerEntry& event, bool paused) {
  return Render({{"version", kLedgerVersion},
                 {"env", event.env},
                 {"paused", paused},
                 {"who", event.who},
                 {"at", FormatTimestamp(event.started)},
                 {"reason", event.message}});
}

// Reads the fields of one JSON object; the first problem is kept and every later read is a
// no-op, so a parser reads straight through and asks for the error once.
class FieldReader {
 public:
  explicit FieldReader(const Json& object) : object_(object) {}

  void String(const char* name, std::string& out) {
    if (const Json* value = Find(name, "a string", &Json::is_string)) {
      out = value->get<std::string>();
    }
  }
  void Bool(const char* name, bool& out) {
    if (const Json* value = Find(name, "true or false", &Json::is_boolean)) {
      out = value->get<bool>();
    }
  }
  void Time(const char* name, WallTime& out) {
    std::string text;
    String(name, text);
    if (!error_.empty()) return;
    if (auto time = ParseTimestamp(text)) {
      out = *time;
    } else {
      error_ = fmt::format("'{}' is not a time such as 2026-12-01T13:05:01.000Z: '{}'", name, text);
    }
  }
  void Outcome(const char* name, DeployOutcome& out) {
    std::string text;
    String(name, text);
    if (!error_.empty()) return;
    auto it =
        std::ranges::find(kOutcomes, text, &std::pair<DeployOutcome, std::string_view>::second);
    if (it == kOutcomes.end()) {
      error_ = fmt::format(
          "'{}' is '{}', not one of success, failed, cancelled, no-change, paused, "
          "resumed",
          name, text);
    } else {
      out = it->first;
    }
  }
  void StringMap(const char* name, Outputs& out) {
    const Json* value = Find(name, "an object", &Json::is_object);
    if (value == nullptr) return;
    for (const auto& [key, item] : value->items()) {
      if (!item.is_string()) {
        error_ = fmt::format("'{}.{}' must be a string, found {}", name, key, item.type_name());
        return;
      }
      out.emplace_back(key, item.get<std::string>());
    }
  }
  // A problem found by the caller.
  void Problem(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  const std::string& error() const { return error_; }

 private:
  const Json* Find(const char* name, const char* expected, bool (Json::*is)() const noexcept) {
    if (!error_.empty()) return nullptr;
    auto it = object_.find(name);
    if (it == object_.end()) {
      error_ = fmt::format("'{}' is missing", name);
      return nullptr;
    }
    if (!((*it).*is)()) {
      error_ = fmt::format("'{}' must be {}, found {}", name, expected, it->type_name());
      return nullptr;
    }
    return &*it;
  }

  const Json& object_;
  std::string error_;
};

// What makes an entry hold together, for Record, for the entries Pause and
// Resume write and for every entry read.
Status CheckEntry(const LedgerEntry& entry) {
  if (Status ok = CheckEnvironment(entry.env); !ok) return ok;
  const std::string_view subject = IdSubject(entry);
  if (!IsEvent(entry.outcome) && !IsBuildId(entry.build_id)) {
    return Fail(fmt::format("'{}' is not a build id such as orders-main-158", entry.build_id));
  }
  if (entry.deploy_id != DeployId(entry.started, subject)) {
    return Fail(
        fmt::format("deploy id '{}' is not {}: a deploy id is the start time (UTC) and "
                    "the build id, so that ids sort by time",
                    entry.deploy_id, DeployId(entry.started, subject)));
  }
  if (entry.who.empty()) return Fail(fmt::format("deploy {}: 'who' is empty", entry.deploy_id));
  if (entry.finished < entry.started) {
    return Fail(fmt::format("deploy {}: finished before it started", entry.deploy_id));
  }
  return {};
}

// The JSON object in `bytes`, or nullopt.
std::optional<Json> ParseObject(std::string_view bytes) {
  Json json = Json::parse(bytes, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return std::nullopt;
  return json;
}

void CheckVersion(FieldReader& fields, const Json& json) {
  auto version = json.find("version");
  if (version == json.end() || !version->is_number_integer() || *version != kLedgerVersion) {
    fields.Problem(
        fmt::format("'version' must be {} (written by another runner?)", kLedgerVersion));
  }
}

// `what` names the object in messages; `env` and `deploy_id` are what its name says.
Result<LedgerEntry> ParseEntry(std::string_view bytes, std::string_view what,
                               const std::string& env, const std::string& deploy_id) {
  auto fail = [&](std::string_view problem) {
    return Fail(fmt::format("{}: {}; the ledger cannot be read past it: repair or remove it", what,
                            problem));
  };
  auto json = ParseObject(bytes);
  if (!json) return fail("not a JSON object");
  FieldReader fields(*json);
  CheckVersion(fields, *json);
  LedgerEntry entry;
  fields.String("env", entry.env);
  fields.String("deploy_id", entry.deploy_id);
  fields.String("build_id", entry.build_id);
  fields.String("project", entry.project);
  fields.String("branch", entry.branch);
  fields.String("commit", entry.commit);
  fields.String("who", entry.who);
  fields.Time("started", entry.started);
  fields.Time("finished", entry.finished);
  fields.Outcome("outcome", entry.outcome);
  fields.Bool("changed", entry.changed);
  fields.StringMap("outputs", entry.outputs);
  fields.String("message", entry.message);
  if (!fields.error().empty()) return fail(fields.error());
  if (entry.env != env || entry.deploy_id != deploy_id) {
    return fail(fmt::format("it holds deploy '{}' of environment '{}', not what its name says",
                            entry.deploy_id, entry.env));
  }
  if (Status ok = CheckEntry(entry); !ok) return fail(ok.error());
  return entry;
}

}  // namespace

std::string_view OutcomeName(DeployOutcome outcome) {
  auto it =
      std::ranges::find(kOutcomes, outcome, &std::pair<DeployOutcome, std::string_view>::first);
  return it->second;
}

std::string DeployId(WallTime started, std::string_view build_id) {
  auto whole = std::chrono::floor<std::chrono::seconds>(started);
  std::time_t seconds = std::chrono::system_clock::to_time_t(whole);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(started - whole).count();
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  // Milliseconds, so that the same build deployed twice in a second (a retry) gets two ids.
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{}", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis,
                     build_id);
}

Result<Ledger> Ledger::Open(std::string_view url, const std::string& state_dir,
                            ArtifactStoreOptions options, std::function<WallTime()> now) {
  std::string location = url.empty() ? state_dir + "/deployments" : std::string(url);
  auto store = OpenArtifactStore(location, std::move(options));
  if (!store) return Fail("ledger: " + store.error());
  if (!now) now = [] { return std::chrono::system_clock::now(); };
  return Ledger(std::move(*store), std::move(now));
}

Status Ledger::Write(const LedgerEntry& entry) {
  const std::string name = EntryName(entry.env, entry.deploy_id);
  auto refuse = [&] {
    return Fail(fmt::format("{} is already in the ledger: an entry is never overwritten",
                            store_->UrlOf(name)));
  };
  // Checked before writing too: not every S3-compatible store honours If-None-Match.
  auto existing = store_->Stat(name);
  if (!existing) return Fail(existing.error());
  if (*existing) return refuse();
  auto written = store_->PutIfAbsent(name, EntryJson(entry), kContentType);
  if (!written) return Fail(written.error());
  if (!*written) return refuse();
  return {};
}

Status Ledger::Record(const LedgerEntry& entry) {
  if (IsEvent(entry.outcome)) {
    return Fail(fmt::format("ledger: a '{}' entry is written by pausing or resuming, not recorded",
                            OutcomeName(entry.outcome)));
  }
  if (Status ok = CheckEntry(entry); !ok) return Fail("ledger: " + ok.error());
  if (Status ok = Write(entry); !ok) return Fail("ledger: " + ok.error());
  return {};
}

Result<std::vector<LedgerEntry>> Ledger::History(const std::string& env) {
  if (Status ok = CheckEnvironment(env); !ok) return Fail("ledger: " + ok.error());
  const std::string prefix = env + "/";
  auto names = store_->List(prefix);
  if (!names) return Fail("ledger: " + names.error());
  std::vector<LedgerEntry> entries;
  for (const std::string& name : *names) {
    std::string_view file = std::string_view(name).substr(prefix.size());
    if (file == kPausedName || !file.ends_with(kJson) || file.find('/') != file.npos) continue;
    auto bytes = store_->Get(name);
    if (!bytes) return Fail("ledger: " + bytes.error());
    auto entry = ParseEntry(*bytes, store_->UrlOf(name), env,
                            std::string(file.substr(0, file.size() - kJson.size())));
    if (!entry) return Fail("ledger: " + entry.error());
    entries.push_back(std::move(*entry));
  }
  std::ranges::sort(entries, [](const LedgerEntry& a, const LedgerEntry& b) {
    return std::tie(a.started, a.deploy_id) < std::tie(b.started, b.deploy_id);
  });
  return entries;
}

Result<std::optional<LedgerEntry>> Ledger::Live(const std::string& env) {
  auto history = History(env);
  if (!history) return Fail(history.error());
  auto live = std::ranges::find_if(history->rbegin(), history->rend(),
                                   [](const LedgerEntry& entry) { return IsLive(entry.outcome); });
  if (live == history->rend()) return std::nullopt;
  return std::move(*live);
}

Result<bool> Ledger::Succeeded(const std::string& env, const std::string& build_id) {
  auto history = History(env);
  if (!history) return Fail(history.error());
  return std::ranges::any_of(*history, [&](const LedgerEntry& entry) {
    return entry.build_id == build_id && IsLive(entry.outcome);
  });
}

LedgerEntry Ledger::Event(const std::string& env, const std::string& who, DeployOutcome outcome,
                          std::string message) const {
  LedgerEntry entry;
  entry.env = env;
  entry.started = entry.finished = now_();
  entry.who = who;
  entry.outcome = outcome;
  entry.message = std::move(message);
  entry.deploy_id = DeployId(entry.started, IdSubject(entry));
  return entry;
}

Status Ledger::Pause(const std::string& env, const std::string& who, const std::string& reason) {
  if (reason.empty()) {
    return Fail(fmt::format("ledger: say why {} is paused: the reason is what others see", env));
  }
  auto paused = Paused(env);
  if (!paused) return Fail(paused.error());
  if (*paused) {
    return Fail(fmt::format("ledger: {} is paused already, since {} by {}: {}", env,
                            Second((*paused)->since), (*paused)->who, (*paused)->reason));
  }
  LedgerEntry entry = Event(env, who, DeployOutcome::kPaused, reason);
  if (Status ok = CheckEntry(entry); !ok) return Fail("ledger: " + ok.error());
  // The state first: deploys stop even if the history entry cannot be written.
  auto written = store_->Put(PausedName(env), StateJson(entry, true), kContentType);
  if (!written) return Fail("ledger: " + written.error());
  if (Status ok = Write(entry); !ok) {
    return Fail(fmt::format("ledger: {} is paused, but its history entry was not written: {}", env,
                            ok.error()));
  }
  return {};
}

Status Ledger::Resume(const std::string& env, const std::string& who) {
  auto paused = Paused(env);
  if (!paused) return Fail(paused.error());
  if (!*paused) return Fail(fmt::format("ledger: {} is not paused", env));
  LedgerEntry entry = Event(env, who, DeployOutcome::kResumed, "");
  if (Status ok = CheckEntry(entry); !ok) return Fail("ledger: " + ok.error());
  // The history first: a resume that is not recorded does not happen.
  if (Status ok = Write(entry); !ok) {
    return Fail(fmt::format("ledger: {} stays paused: {}", env, ok.error()));
  }
  auto written = store_->Put(PausedName(env), StateJson(entry, false), kContentType);
  if (!written) {
    return Fail(fmt::format("ledger: {} stays paused (its resume is in the history): {}", env,
                            written.error()));
  }
  return {};
}

Result<std::optional<PauseState>> Ledger::Paused(const std::string& env) {
  if (Status ok = CheckEnvironment(env); !ok) return Fail("ledger: " + ok.error());
  const std::string name = PausedName(env);
  auto exists = store_->Stat(name);
  if (!exists) return Fail("ledger: " + exists.error());
  if (!*exists) return std::nullopt;
  auto bytes = store_->Get(name);
  if (!bytes) return Fail("ledger: " + bytes.error());
  auto fail = [&](std::string_view problem) {
    // Unreadable is not "not paused": deploys stay stopped until someone looks.
    return Fail(
        fmt::format("ledger: {}: {}; every deploy to {} is refused until it is repaired "
                    "or removed",
                    store_->UrlOf(name), problem, env));
  };
  auto json = ParseObject(*bytes);
  if (!json) return fail("not a JSON object");
  FieldReader fields(*json);
  CheckVersion(fields, *json);
  std::string state_env;
  bool paused = false;
  PauseState state;
  fields.String("env", state_env);
  fields.Bool("paused", paused);
  fields.String("who", state.who);
  fields.Time("at", state.since);
  fields.String("reason", state.reason);
  if (!fields.error().empty()) return fail(fields.error());
  if (state_env != env) return fail(fmt::format("it is the state of environment '{}'", state_env));
  if (!paused) return std::nullopt;
  return state;
}

Result<EnvironmentHistory> Ledger::Read(const std::string& env) {
  EnvironmentHistory out;
  out.env = env;
  auto history = History(env);
  if (!history) return Fail(history.error());
  out.entries = std::move(*history);
  auto paused = Paused(env);
  if (!paused) return Fail(paused.error());
  out.paused = std::move(*paused);
  return out;
}

std::string FormatDeployments(const std::vector<EnvironmentHistory>& environments) {
  if (environments.empty()) return "no environments\n";
  std::string out;
  for (const EnvironmentHistory& environment : environments) {
    if (!out.empty()) out += "\n";
    const std::string& env = environment.env;
    auto live =
        std::ranges::find_if(environment.entries.rbegin(), environment.entries.rend(),
                             [](const LedgerEntry& entry) { return IsLive(entry.outcome); });
    if (live != environment.entries.rend()) {
      out += fmt::format("{}: live {} (deployed {} by {})\n", env, live->build_id,
                         Second(live->finished), live->who);
    } else if (environment.entries.empty()) {
      out += fmt::format("{}: no deploys recorded\n", env);
    } else {
      out += fmt::format("{}: nothing live (no deploy has succeeded)\n", env);
    }
    if (const auto& paused = environment.paused) {
      out += fmt::format("  !!! PAUSED since {} by {}: {}\n", Second(paused->since), paused->who,
                         paused->reason);
      out +=
          fmt::format("  !!! no deploy to {} runs until `runner deploy --resume {}`\n", env, env);
    }
    if (environment.entries.empty()) continue;
    // The message column only when some entry has one.
    const bool messages = std::ranges::any_of(
        environment.entries, [](const LedgerEntry& entry) { return !entry.message.empty(); });
    std::vector<std::vector<std::string>> rows = {
        {"WHEN", "BUILD", "OUTCOME", "WHO", "CHANGED", "MESSAGE"}};
    for (const LedgerEntry& entry : environment.entries) {
      bool event = IsEvent(entry.outcome);
      rows.push_back({Second(entry.started), event ? "-" : entry.build_id,
                      std::string(OutcomeName(entry.outcome)), entry.who,
                      event ? "-" : (entry.changed ? "yes" : "no"),
                      entry.message.substr(0, entry.message.find('\n'))});
    }
    const size_t columns = messages ? rows[0].size() : rows[0].size() - 1;
    std::vector<size_t> widths(columns, 0);
    for (const auto& row : rows) {
      for (size_t i = 0; i < columns; ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows) {
      std::string line = "  ";
      for (size_t i = 0; i < columns; ++i) {
        line += row[i];
        if (i + 1 < columns) line += std::string(widths[i] - row[i].size() + 2, ' ');
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out += line + "\n";
    }
  }
  return out;
}

}  // namespace runner::deploy
