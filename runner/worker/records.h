// The records of many machines (SPEC section 10): build records, logs, build numbers and
// delivery marks under one `records:` store (s3://bucket/prefix/ or file:///dir/), shared by
// `runner serve --queue` and every `runner worker` without a lock server. Whatever must be
// taken once is taken with a conditional write (ArtifactStore::PutIfAbsent: S3's
// `If-None-Match: *`, whose 412 means taken; a 409 ConditionalRequestConflict is retried with
// backoff by the S3 client).
//
//   numbers/PROJECT/NNNNNNNNNN     a claimed build number (10 digits), holding the build id
//   deliveries/DELIVERY            a delivery seen: {"id", "queued"} (queued: sent to the queue)
//   heads/PROJECT/BRANCH           the newest build number queued for a branch (a hint: the
//                                  worker skips an older build as superseded)
//   builds/ID/claim                the build id taken, before the number: {"project", "branch"}
//                                  (two projects can spell one id: "a" on branch "b-1" and
//                                  "a-b" on "1"; the second passes that number over)
//   builds/ID/entry.json           the build as queued (runner/serve/build_queue.h's entry)
//   builds/ID/attempts/K           attempt K of the build claimed by a worker: {"worker", "at"}
//   builds/ID/runs/K/live.json     attempt K's record so far, while it runs
//   builds/ID/runs/K/logs/STEP/NNNNNN   attempt K's log of STEP in chunks, shipped as it runs
//   builds/ID/report.json, junit.xml, logs/STEP.log   the build's record once it ended
//                                  (report.json written last, and only once)
//
// PROJECT and BRANCH are sanitised as in the build id (SanitizeIdPart).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runner/result.h"
#include "runner/store/artifact_store.h"

namespace runner::worker {

// Thread-safe, as the store is.
class Records {
 public:
  explicit Records(std::unique_ptr<ArtifactStore> store) : store_(std::move(store)) {}

  ArtifactStore& store() { return *store_; }

  // Claims the first free build number of `project` above every number claimed so far, and
  // returns it: two callers, on any machines, never get the same one, nor a number whose build
  // id another project's build has.
  Result<std::int64_t> ClaimNumber(const std::string& project, const std::string& branch);

  // Marks `delivery` seen with `body`; false, and nothing changed, when it was marked before.
  Result<bool> MarkDelivery(const std::string& delivery, std::string_view body);
  // The body of a delivery's mark; nullopt when unmarked.
  Result<std::optional<std::string>> Delivery(const std::string& delivery);
  // Rewrites the mark of a delivery.
  Status UpdateDelivery(const std::string& delivery, std::string_view body);

  // The newest number queued for `branch` of `project` (0: none), and raising it.
  Result<std::int64_t> Head(const std::string& project, const std::string& branch);
  Status SetHead(const std::string& project, const std::string& branch, std::int64_t number);

  // Claims the next attempt of build `id` (1 for the first) with `body`.
  Result<int> ClaimAttempt(const std::string& id, std::string_view body);
  // The newest attempt claimed of build `id`; 0 when none.
  Result<int> LatestAttempt(const std::string& id);

  // Asks for build `id` to be cancelled, for `reason`: the worker that takes it records it
  // cancelled, and the one building it stops it.
  Status RequestCancel(const std::string& id, std::string_view reason);
  // The reason build `id` was asked to be cancelled for; nullopt when it was not.
  Result<std::optional<std::string>> CancelRequest(const std::string& id);

  // The ids of the builds whose numbers were claimed, the newest `limit` of each project.
  Result<std::vector<std::string>> BuildIds(std::size_t limit);

  // Names below the store: "builds/ID/NAME" and "builds/ID/runs/K/NAME".
  static std::string BuildName(const std::string& id, std::string_view name);
  static std::string RunName(const std::string& id, int attempt, std::string_view name);
  // Where the log chunks of `step` in attempt `attempt` go: this, then the chunk's number in 6
  // digits, from 1.
  static std::string LogChunkPrefix(const std::string& id, int attempt, const std::string& step);

 private:
  // PutIfAbsent of PREFIX + N for N = `first`, `first` + 1, ... until one is free: that N. An N
  // for which `may_take` (optional) is false is passed over.
  Result<std::int64_t> ClaimFrom(
      const std::string& prefix, std::int64_t first, int digits,
      const std::function<std::string(std::int64_t)>& body,
      const std::function<Result<bool>(std::int64_t)>& may_take = nullptr);
  // The largest number among the names below `prefix`, 0 when none.
  Result<std::int64_t> Largest(const std::string& prefix);

  std::unique_ptr<ArtifactStore> store_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::int64_t> last_number_;  // by project, claimed here
};

// The records at `url` (s3://bucket/prefix/ or file:///dir/; a relative directory is relative
// to the working directory), credentials and region from `env`; retry lines to `log` (optional).
// The error names `records`.
Result<std::unique_ptr<Records>> OpenRecords(const std::string& url, const Environment& env,
                                             std::function<void(std::string_view)> log = nullptr);

}  // namespace runner::worker
