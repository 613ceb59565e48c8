// What the build pages of `runner serve --queue` show (SPEC section 10): the builds of every
// worker, read from the records (runner/worker/records.h) rather than the server's own state,
// and their logs live: a followed step's log is copied chunk by chunk from the records into a
// local file, which the page's event stream follows as it follows a local build's log.
#pragma once

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runner/periodic_thread.h"
#include "runner/serve/build_queue.h"
#include "runner/serve/log_follower.h"
#include "runner/worker/records.h"

namespace runner::serve {

// The name of a queued build's entry in the records: `builds/ID/entry.json`.
std::string EntryName(const std::string& id);
// A queued build's entry in the records: nullopt when the build was never queued, an error
// when it cannot be read or is no entry.
Result<std::optional<QueueEntry>> FindEntry(worker::Records& records, const std::string& id);
// Records `entry` under its id.
Status PutEntry(worker::Records& records, const QueueEntry& entry);

// Thread-safe. `records` and `follower` must outlive the view.
class RecordsView {
 public:
  // Copies of followed logs go below `cache_dir`.
  RecordsView(worker::Records& records, std::string cache_dir, LogFollower& follower);
  RecordsView(const RecordsView&) = delete;
  RecordsView& operator=(const RecordsView&) = delete;

  // A build's record: report.json once published; else the newest attempt's live.json (status
  // `abandoned` when that attempt was); else the build as queued; nullopt for an unknown id.
  // The member `repository` is added, and `attempt` once one started.
  std::optional<nlohmann::json> Build(const std::string& id);
  // The newest builds of each project, at most `limit` each, newest first, without steps.
  Result<std::vector<nlohmann::json>> Builds(std::size_t limit);
  // A step's log: the published one, else what the newest attempt shipped so far.
  std::optional<std::string> Log(const std::string& id, const std::string& step);

  // The local copy of a step's log, kept up to date while the step runs (from now on: call it
  // when a page starts to follow the log). REQUIRES: `id` and `step` are safe file names.
  std::string Follow(const std::string& id, const std::string& step);
  // Whether that copy is complete: the step has ended and every chunk of it is copied.
  bool Complete(const std::string& id, const std::string& step);

 private:
  struct Followed {
    std::string path;
    int attempt = 0;
    int chunks = 0;  // copied
    bool complete = false;
  };

  // Brings every followed log that is not complete up to date.
  void Poll();
  // Copies what is new of one followed log, and notes when it is complete.
  void Update(const std::string& id, const std::string& step, Followed& followed);
  std::optional<nlohmann::json> ReadJson(const std::string& name);

  worker::Records& records_;
  const std::string cache_dir_;
  LogFollower& follower_;
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Followed> followed_;  // guarded by mutex_
  PeriodicThread poll_;  // last: stopped before the rest goes
};

}  // namespace runner::serve
