// Content digests of input files, with each file's stat data remembered (as ccache's manifest
// and Git's index do) so that an unchanged file is not read again on the next build.
//
// A remembered digest is used only when the file's size, mtime, ctime, inode, device and mode
// are all what they were when it was read, and when the file's mtime was not within kRacyWindow
// of the read: a file changed in the same timestamp tick as the read (the
// "racy Git" problem; timestamps come from a coarse clock and some filesystems keep seconds)
// could have new content under the old stat data, so it is read again next time.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "runner/result.h"

namespace runner {

inline constexpr std::chrono::nanoseconds kRacyWindow = std::chrono::seconds(1);

struct FileDigest {
  std::string sha256;      // hex
  std::uint32_t mode = 0;  // st_mode's permission bits
  std::uint64_t size = 0;
};

// Not thread-safe.
class FileDigests {
 public:
  // The stat data saved at `path` (STATE/cache/stat-data), read at the first Digest; a
  // missing, unreadable or malformed file starts empty (everything is read again), never an
  // error.
  explicit FileDigests(std::string path);

  // The digest of the file at `path` (absolute, a regular file or a link to one).
  Result<FileDigest> Digest(const std::string& path);

  // Writes the stat data back (atomically), when anything changed.
  Status Save();

  // Files read (hashed) since construction: the rest came from the stat data.
  std::uint64_t files_read() const { return files_read_; }

 private:
  // What tells a file unchanged: equal stat data, and a read well after its last write.
  struct StatData {
    std::uint64_t size = 0, mtime_ns = 0, ctime_ns = 0, inode = 0, device = 0, mode = 0;
    bool operator==(const StatData&) const = default;
  };
  static StatData StatDataOf(const struct stat& info);
  struct Entry {
    StatData stat;
    std::int64_t read_ns = 0;  // when its content was read (CLOCK_REALTIME)
    std::string sha256;
  };
  void Load();

  std::string path_;
  std::unordered_map<std::string, Entry> entries_;
  bool loaded_ = false;
  bool changed_ = false;
  std::uint64_t files_read_ = 0;
};

}  // namespace runner
