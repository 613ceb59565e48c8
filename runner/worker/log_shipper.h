// Ships a running build's live record and step logs from the worker's disk to the records
// (records.h), so that `runner serve` on another machine shows the build live: each call of
// Ship puts live.json when it changed and every step log's new bytes as the next numbered
// chunk (builds/ID/runs/K/logs/STEP/NNNNNN). Publish, at the end, puts the whole logs and
// junit.xml, then report.json, once.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "runner/result.h"
#include "runner/worker/records.h"

namespace runner::worker {

// Not thread-safe: one thread ships.
class LogShipper {
 public:
  // `build_dir` is the local STATE/builds/ID of attempt `attempt` of build `id`.
  LogShipper(Records& records, std::string build_dir, std::string id, int attempt)
      : records_(records),
        build_dir_(std::move(build_dir)),
        id_(std::move(id)),
        attempt_(attempt) {}

  // Ships what is new since the last call. A failed put is shipped again by the next call.
  Status Ship();

  // After a last Ship: the logs and junit.xml, then `report` (the build's report.json, as
  // read) with PutIfAbsent. False when the build already had a report (another attempt's):
  // nothing of this one replaced it.
  Result<bool> Publish(const std::string& report);

 private:
  struct StepLog {
    std::uint64_t offset = 0;  // bytes shipped
    int chunks = 0;
  };

  Records& records_;
  const std::string build_dir_;
  const std::string id_;
  const int attempt_;
  std::map<std::string, StepLog> logs_;  // by step id
  std::string live_;                     // the live.json shipped last
};

}  // namespace runner::worker
