// Files that appear whole or not at all (house style 6): written to a temporary file in the
// destination's directory, flushed, then renamed over the destination.
#pragma once

#include <string>
#include <string_view>

#include "runner/result.h"

namespace runner {

// Writes `contents` to `path` atomically. Creates missing parent directories. `sync` as for
// AtomicFileWriter::Commit.
Status WriteFileAtomic(const std::string& path, std::string_view contents, bool sync = true);

// A file written in pieces that appears at `path` only on Commit(). Destroying an uncommitted
// writer removes the temporary file, so an interrupted write leaves nothing behind.
class AtomicFileWriter {
 public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Creates the temporary file (and missing parent directories).
  Status Open(const std::string& path);
  // Appends; the first failure is kept and reported by Commit().
  void Append(std::string_view data);
  // Renames into place, after syncing the data to disk when `sync` (records and artifacts;
  // a step log, rewritten by the next run anyway, skips the cost).
  Status Commit(bool sync = true);
  bool is_open() const { return fd_ >= 0; }

 private:
  void Discard();

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  std::string error_;
};

// Reads a whole file.
Result<std::string> ReadFile(const std::string& path);

}  // namespace runner
