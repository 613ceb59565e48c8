// Files that appear whole or not at all (house style 6): written to a temporary file in the
// destination's directory, flushed, then renamed over the destination. The one atomic writer:
// records, reports, params files, archives and the build number all go through it.
#pragma once

#include <string>
#include <string_view>

#include "runner/fs.h"
#include "runner/result.h"

namespace runner {

// Writes `contents` to `path` atomically. Creates missing parent directories. `sync` and
// `sync_directory` as for AtomicFileWriter::Commit.
Status WriteFileAtomic(const std::string& path, std::string_view contents, bool sync = true,
                       bool sync_directory = false);

// A file written in pieces that appears at `path` only on Commit(). Destroying an uncommitted
// writer (or a failed Commit) removes the temporary file, so an interrupted write leaves
// nothing behind. Not thread-safe.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Creates the temporary file, mode 0644, (and missing parent directories).
  Status Open(const std::string& path);
  // Appends; the first failure is kept and reported by Commit().
  void Append(std::string_view data);
  // Renames into place, after syncing the data to disk when `sync` (records and artifacts;
  // a step log, rewritten by the next run anyway, skips the cost), and syncs the directory
  // afterwards when `sync_directory`, so that the rename itself survives a crash.
  Status Commit(bool sync = true, bool sync_directory = false);
  bool is_open() const { return fd_.valid(); }
  // REQUIRES: is_open(). The temporary file, for callers that write or read it themselves
  // (an archive written with pwrite, checked before it is committed).
  int fd() const { return fd_.get(); }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void Discard();

  std::string path_;
  std::string temp_path_;
  UniqueFd fd_;
  std::string error_;
};

}  // namespace runner
