// The build queue of `runner serve` (SPEC section 9): every push the server accepts becomes an
// entry, kept on disk so that a restart loses no accepted build and runs none twice.
//
// On-disk layout, under the directory given to Open (STATE/queue):
//
//   lock                     held (flock) by the one BuildQueue that has the directory open
//   entries/SEQ.json         one file per entry, SEQ its sequence number in 12 digits (so the
//                            names sort in order of acceptance); a JSON object with every
//                            QueueEntry member under its own name, `state` as StateName.
//                            Rewritten whole (atomic_file, file and directory synced) on every
//                            change of state; never removed by the queue.
//   numbers/PROJECT/         the build number counter of a project (NextBuildNumber, PROJECT
//                            sanitised as in the build id)
//   deliveries/DELIVERY      an empty file, created exclusively, for a delivery that was seen
//                            but queued nothing (MarkDelivery)
//
// Order of writes, and what Open makes of a crash between two of them:
//   Enqueue: number counter, then the entry, then each entry it supersedes. A number taken
//     without an entry is a gap, never a repeat. An entry is the delivery's dedup record too,
//     so an accepted delivery is seen again after any crash. Supersession cut short is
//     finished by Open: a queued entry older than a queued push of the same repository and
//     ref is skipped, exactly what Enqueue would have done.
//   StartNext: the entry is persisted running before it is handed out. Open turns a running
//     entry into abandoned, since its build id may have a record: never built twice.
//   MarkDelivery: the mark is created exclusively and synced, file and directory.
//   Every other change rewrites one entry file, whole or not at all.
//
// Delivery ids are untrusted: one that is not a token (see Enqueue) is refused, so it never
// becomes a path. Every file name the queue makes is a number, a sanitised project name or
// such a token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runner/fs.h"
#include "runner/result.h"

namespace runner::serve {

struct QueueEntry {
  enum class State { kQueued, kRunning, kFinished, kSkipped, kAbandoned };

  std::string id;          // the build id, {project}-{branch}-{number}, both parts sanitised
                           // with SanitizeIdPart
  std::int64_t seq = 0;    // order of acceptance, from 1, never reused
  std::string repository;  // full name from the payload: acme/orders
  std::string project;     // orders
  std::string branch;      // branch or tag name as pushed (not sanitised)
  std::string ref;         // refs/heads/NAME or refs/tags/NAME
  std::string event;       // push or tag
  std::string before;      // commit before the push, from the payload (may be all zeros)
  std::string after;       // the commit to build
  std::string default_branch;
  std::string delivery;  // X-GitHub-Delivery, or "rerun:ID:SEQ" for a rerun
  std::string trigger = "webhook";
  std::string rerun_of;  // the build id this entry reruns; empty for a push
  std::int64_t number = 0;
  State state = State::kQueued;
  std::string result;       // kFinished: success, failed, timed_out, cancelled or error
  std::string reason;       // kSkipped: why ("superseded by orders-main-13"); kAbandoned: why;
                            // kFinished with error: why
  std::string enqueued_at;  // FormatTimestamp
  std::string started_at;   // empty until kRunning
  std::string finished_at;  // empty until kFinished, kSkipped or kAbandoned
};

// "queued", "running", "finished", "skipped", "abandoned".
std::string_view StateName(QueueEntry::State state);

// A build to accept, as the webhook handler read it from the push.
struct NewBuild {
  std::string repository;  // required
  std::string project;     // required; sanitised, not "." or ".."
  std::string branch;      // required
  std::string ref;         // required
  std::string event;
  std::string before;
  std::string after;  // required
  std::string default_branch;
  std::string delivery;  // required, a token (see Enqueue)
  std::string trigger = "webhook";
};

struct Enqueued {
  // The delivery was seen before (also before a restart): nothing was queued, and `entry` is
  // the earlier entry. A delivery seen through MarkDelivery has no entry: then `entry` is empty.
  bool duplicate = false;
  QueueEntry entry;
  // Queued entries of the same repository and ref, now kSkipped because of this one.
  std::vector<QueueEntry> superseded;
  // Running entries of the same repository and ref: the caller decides whether to cancel them
  // (cancel_running) and reports the outcome with Finish.
  std::vector<QueueEntry> running_same_branch;
};

// Whether `delivery` is a token that may name a file (see Enqueue).
Status CheckDelivery(std::string_view delivery);
// Whether `build` can be accepted, as Enqueue checks it.
Status CheckNewBuild(const NewBuild& build);
// A queued entry of `build`'s push fields (no id, number or seq yet).
QueueEntry EntryOf(const NewBuild& build);
// A new entry, not yet numbered, that builds `original`'s commit again: the push's fields, and
// rerun_of its id.
QueueEntry RerunOf(const QueueEntry& original);
// The delivery id of rerun number `seq` of build `id`: "rerun:ID:SEQ".
std::string RerunDelivery(const std::string& id, std::int64_t seq);
// An entry as the entry files hold it, and back; the error names `where` and what is wrong.
std::string EntryToJson(const QueueEntry& entry);
Result<QueueEntry> EntryFromJson(std::string_view text, std::string_view where);

// The record of a build that has none of its own (queued, skipped, abandoned before it ran) in
// report.json's form: the build, `status`, its times, no steps.
nlohmann::json EntryRecord(const QueueEntry& entry, std::string_view status);

// Thread-safe. One per directory: a second Open of the same directory, from this process or
// another, fails while the first is alive.
class BuildQueue {
 public:
  // Opens the queue in `dir`, creating it. Entries found kRunning (the server stopped while
  // they ran) become kAbandoned with a reason; entries kQueued stay queued in their order,
  // except those a later queued push of the same repository and ref supersedes (a crash in
  // the middle of Enqueue). A corrupt entry file is an error naming the file: no accepted
  // build is dropped silently.
  static Result<std::unique_ptr<BuildQueue>> Open(const std::string& dir);

  // Accepts a build: refuses a delivery id that is not a token (1 to 128 characters from
  // [A-Za-z0-9._:-], the first a letter or digit) and any required field that is empty or
  // not UTF-8; answers a delivery seen before as a duplicate; takes the project's next number;
  // persists the entry; then skips the older queued entries of the same repository and ref
  // (reason "superseded by ID"). The entry is durable when this returns, so the caller may
  // answer 202. An error after the entry is durable (the disk failing while recording a
  // superseded entry) leaves the build queued, and a redelivery is answered as a duplicate.
  Result<Enqueued> Enqueue(const NewBuild& build);

  // Records that a delivery was seen without queueing anything (a deletion push, a ping), so
  // that a redelivery is also answered "seen". Durable when it returns. Returns false if the
  // delivery was seen before. The delivery must be a token as for Enqueue.
  Result<bool> MarkDelivery(const std::string& delivery);

  // The oldest queued entry, now kRunning (persisted before it returns), or nullopt when none
  // is queued. The caller limits how many run at once (running()).
  Result<std::optional<QueueEntry>> StartNext();

  // Records the end of a running entry: `result` is success, failed, timed_out, cancelled or
  // error, `reason` why (for error). Error if `id` is unknown or not running. The entry is
  // finished in memory even when persisting fails (the build did end); Open then abandons it.
  Status Finish(const std::string& id, std::string result, std::string reason = "");

  // A new queued entry for the same commit as `id` (a rerun from the build page): the same
  // push fields, a new number, rerun_of `id`, delivery "rerun:ID:SEQ". Unlike a push it
  // supersedes nothing. Error if `id` is unknown or still queued.
  Result<QueueEntry> Rerun(const std::string& id);

  // Skips a queued entry (cancelled before it started) with `reason`. Error if `id` is
  // unknown or not queued.
  Status Skip(const std::string& id, std::string reason);

  std::optional<QueueEntry> Find(const std::string& id) const;
  // At most `limit` entries, newest first.
  std::vector<QueueEntry> List(std::size_t limit) const;
  std::size_t queued() const;
  std::size_t running() const;

  // The entries this Open found kRunning and made kAbandoned, for the caller to report (their
  // commit statuses still say pending).
  const std::vector<QueueEntry>& abandoned_at_open() const { return abandoned_at_open_; }

 private:
  BuildQueue(std::string dir, UniqueFd lock);

  Status Load();
  Status Persist(const QueueEntry& entry) const;
  // Adds a new queued entry to disk and memory, taking its number and seq.
  Result<QueueEntry> Add(QueueEntry entry);
  // Skips the queued entries of `entry`'s repository and ref older than it, on disk and in
  // memory, returning them.
  Result<std::vector<QueueEntry>> Supersede(const QueueEntry& entry);
  QueueEntry* FindLocked(const std::string& id);
  const QueueEntry* FindLocked(const std::string& id) const;

  const std::string dir_;
  const UniqueFd lock_;
  std::vector<QueueEntry>
      abandoned_at_open_;  // the flock on DIR/lock, released when the queue is destroyed
  mutable std::mutex mutex_;
  std::map<std::int64_t, QueueEntry> entries_;         // by seq
  std::unordered_map<std::string, std::int64_t> ids_;  // build id to seq
  // Every delivery seen, with the seq of its entry, or 0 for one marked by MarkDelivery.
  std::unordered_map<std::string, std::int64_t> deliveries_;
  std::set<std::int64_t> queued_;   // seqs of kQueued entries
  std::set<std::int64_t> running_;  // seqs of kRunning entries
  std::int64_t last_seq_ = 0;
};

}  // namespace runner::serve
