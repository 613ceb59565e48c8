#include "runner/cache/file_digests.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <charconv>
#include <ctime>

#include "runner/atomic_file.h"
#include "runner/fs.h"
#include "runner/sha256.h"

namespace runner {

namespace {

constexpr std::string_view kHeader = "runner-stat-data 1\n";

std::uint64_t Nanoseconds(const timespec& time) {
  return static_cast<std::uint64_t>(time.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(time.tv_nsec);
}

std::int64_t NowNs() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(Nanoseconds(now));
}

Result<struct stat> StatFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return Fail(fmt::format("cannot stat {}: {}", path, ErrnoText(errno)));
  }
  if (!S_ISREG(info.st_mode)) return Fail(fmt::format("{} is not a regular file", path));
  return info;
}

// Reads the next space-separated number of `line`; false at a malformed one.
template <class T>
bool Next(std::string_view& line, T& value) {
  auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), value);
  if (error != std::errc() || end == line.data() + line.size() || *end != ' ') return false;
  line.remove_prefix(end - line.data() + 1);
  return true;
}

}  // namespace

FileDigests::StatData FileDigests::StatDataOf(const struct stat& info) {
  return {static_cast<std::uint64_t>(info.st_size),
          Nanoseconds(info.st_mtim),
          Nanoseconds(info.st_ctim),
          static_cast<std::uint64_t>(info.st_ino),
          static_cast<std::uint64_t>(info.st_dev),
          static_cast<std::uint64_t>(info.st_mode)};
}

FileDigests::FileDigests(std::string path) : path_(std::move(path)) {}

void FileDigests::Load() {
  loaded_ = true;
  auto text = ReadFile(path_);
  if (!text || !text->starts_with(kHeader)) return;
  std::string_view rest = std::string_view(*text).substr(kHeader.size());
  while (!rest.empty()) {
    size_t newline = rest.find('\n');
    if (newline == std::string_view::npos) break;  // a torn last line: ignored
    std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline + 1);
    Entry entry;
    StatData& stat = entry.stat;
    if (!Next(line, stat.size) || !Next(line, stat.mtime_ns) || !Next(line, stat.ctime_ns) ||
        !Next(line, stat.inode) || !Next(line, stat.device) || !Next(line, stat.mode) ||
        !Next(line, entry.read_ns) || line.size() < 66 || line[64] != ' ') {
      continue;
    }
    entry.sha256 = std::string(line.substr(0, 64));
    entries_.insert_or_assign(std::string(line.substr(65)), std::move(entry));
  }
}

Result<FileDigest> FileDigests::Digest(const std::string& path) {
  // Read when first needed: a build that keys no step never reads it.
  if (!loaded_) Load();
  auto before = StatFile(path);
  if (!before) return Fail(before.error());
  FileDigest digest{"", static_cast<std::uint32_t>(before->st_mode & 07777),
                    static_cast<std::uint64_t>(before->st_size)};
  Entry now{StatDataOf(*before), 0, ""};
  auto known = entries_.find(path);
  if (known != entries_.end()) {
    const Entry& old = known->second;
    bool same = old.stat == now.stat;
    // Modified too close to the read to be sure the read saw the last write (a write updates
    // the mtime; a ctime-only change, chmod or rename, is caught by the comparison above).
    std::int64_t modified = static_cast<std::int64_t>(old.stat.mtime_ns);
    if (same && modified + kRacyWindow.count() < old.read_ns) {
      digest.sha256 = old.sha256;
      return digest;
    }
  }
  now.read_ns = NowNs();
  auto sha256 = FileSha256Hex(path);
  if (!sha256) return Fail(sha256.error());
  ++files_read_;
  digest.sha256 = *sha256;
  // Changed while it was read: the digest is of this read, but not worth remembering.
  auto after = StatFile(path);
  if (!after || StatDataOf(*after) != now.stat) {
    entries_.erase(path);
    changed_ = true;
    return digest;
  }
  if (path.find('\n') == std::string::npos) {
    now.sha256 = *sha256;
    entries_.insert_or_assign(path, std::move(now));
    changed_ = true;
  }
  return digest;
}

Status FileDigests::Save() {
  if (!changed_) return {};
  std::string text(kHeader);
  for (const auto& [path, entry] : entries_) {
    const StatData& stat = entry.stat;
    text += fmt::format("{} {} {} {} {} {} {} {} {}\n", stat.size, stat.mtime_ns, stat.ctime_ns,
                        stat.inode, stat.device, stat.mode, entry.read_ns, entry.sha256, path);
  }
  if (auto written = WriteFileAtomic(path_, text, /*sync=*/false); !written) return written;
  changed_ = false;
  return {};
}

}  // namespace runner
