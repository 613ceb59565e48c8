// The step cache (SPEC section 8): a step's key from what it runs and reads, and its results
// (output files, outputs, artifacts, masked log) stored under that key and restored on a hit.
//
// Two stores, one interface (ArtifactStore): STATE/cache locally, read first and always
// written, and the pipeline's `cache_store`, read by every build and written only by builds
// that may (`cache_write`). In each, blobs are named by their content's SHA-256
// (`blobs/ab/abcd...`) and an entry (`entries/KEY.json`, naming the blobs) is written last, so
// a reader never finds an entry whose blobs are not all there yet. Every blob is checked
// against its digest and size on the way back; anything wrong with an entry is a miss with a
// warning, never a wrong result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/build_record.h"
#include "runner/cache/cache_key.h"
#include "runner/cache/file_digests.h"
#include "runner/pipeline.h"
#include "runner/result.h"
#include "runner/store/artifact_store.h"

namespace runner {

inline constexpr std::uint64_t kDefaultCacheMaxBytes = 5ull << 30;  // 5 GiB, as ccache

// What a step's key covers. Nothing that differs between builds of the same inputs (the build
// number, its id, timestamps, the workspace's absolute path) is in it, unless the step's own
// configuration or env expands to it: then the step differs per build and always misses.
struct StepKeyParts {
  std::string_view kind;
  const ConfigNode* config = nullptr;  // expanded; locations are not part of the key
  std::string dir;                     // the step's directory relative to the workspace
  // The variables the pipeline's and the step's `env` set, with their final values.
  std::vector<std::pair<std::string, std::string>> env;
  // `cache.env`: each name with its value in the step's environment, or nullopt when unset.
  std::vector<std::pair<std::string, std::optional<std::string>>> declared_env;
  std::vector<std::string> inputs;  // `cache.inputs`
  int version = kCacheKeyVersion;
};

// The key (64 hex digits): the fields above, then for each input file (sorted by path) its
// path relative to the step's directory, exec bit and content digest. Errors: an input pattern
// that selects nothing or leads outside the workspace, a file that cannot be read.
Result<std::string> StepKey(const StepKeyParts& parts, const std::string& cwd,
                            const std::string& workspace, FileDigests& digests);

struct CachedFile {
  std::string path;  // relative to the step's directory ('/'-separated, no `..`)
  std::uint32_t mode = 0644;
  std::uint64_t size = 0;
  std::string sha256;
};

struct CacheEntry {
  std::string key;
  std::string step;   // the step id that stored it
  std::string build;  // the build that ran the step
  Outputs outputs;
  std::vector<Artifact> artifacts;
  std::vector<CachedFile> files;
  CachedFile log;  // the masked log (no path)
};

std::string EncodeCacheEntry(const CacheEntry& entry);
// Fails on anything EncodeCacheEntry would not write, and on a key other than `key`.
Result<CacheEntry> DecodeCacheEntry(std::string_view text, std::string_view key);

// Warnings for the step's log ("cache entry ... is corrupt: ..."), one line each.
using CacheLog = std::function<void(std::string_view)>;

struct StepCacheOptions {
  std::string dir;                        // STATE/cache (absolute)
  std::unique_ptr<ArtifactStore> shared;  // cache_store, or null
  bool write_shared = false;              // this build's branch matches cache_write
};

struct CacheHit {
  CacheEntry entry;
  std::string log;    // verified
  std::string store;  // "local" or the shared store's URL
};

// Not thread-safe: the scheduler calls it from its one thread.
class StepCache {
 public:
  explicit StepCache(StepCacheOptions options);

  FileDigests& digests() { return digests_; }

  // Looks `key` up, locally then in the shared store, and restores the entry's files into `cwd`
  // (each written atomically with its mode, only once every blob was fetched and checked).
  // A hit from the shared store is copied into the local one. nullopt: a miss, with the reason
  // logged when it was anything but an absent entry.
  std::optional<CacheHit> Restore(const std::string& key, const std::string& cwd,
                                  const std::string& workspace, const CacheLog& log);

  // Stores a successful step: `entry` (without files and log), the files `outputs` select in
  // `cwd`, and `log` (masked). Returns where it was stored ("local", the shared URL); problems
  // are logged and leave that store without the entry.
  std::vector<std::string> Store(CacheEntry entry, const std::vector<std::string>& outputs,
                                 std::string_view log_text, const std::string& cwd,
                                 const std::string& workspace, const CacheLog& log);

  // Removes local entries, least recently used (stored or restored) first, and the blobs only
  // they named, until the local cache holds at most `max_bytes`.
  Status Evict(std::uint64_t max_bytes);

  // Saves the stat data of the input files (FileDigests::Save).
  Status SaveStatData() { return digests_.Save(); }

 private:
  std::optional<CacheHit> RestoreFrom(ArtifactStore& store, const std::string& key,
                                      const std::string& cwd, const std::string& workspace,
                                      const CacheLog& log);

  StepCacheOptions options_;
  std::unique_ptr<ArtifactStore> local_;
  FileDigests digests_;
};

}  // namespace runner
