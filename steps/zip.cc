#include "steps/zip.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <libdeflate.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include "runner/atomic_file.h"
#include "runner/config_node.h"
#include "runner/file_select.h"
#include "runner/fs.h"
#include "runner/glob.h"
#include "runner/path.h"
#include "runner/progress.h"
#include "runner/sha256.h"
#include "runner/utf8.h"
#include "runner/worker_pool.h"
#include "runner/workspace_path.h"
#include "steps/codedeploy.h"

namespace runner {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kDosEpoch = 315532800;  // 1980-01-01T00:00:00Z
constexpr std::uint64_t kMax32 = 0xFFFFFFFFu;
// A deflated entry can come out slightly larger than its input (stored blocks, sync markers);
// entries from this size on get zip64 sizes so that no header field can overflow.
constexpr std::uint64_t kZip64SizeThreshold = 0xF0000000u;

// ---------------------------------------------------------------------------------------------
// Configuration.

const std::vector<std::string>& ZipKeys() {
  static const std::vector<std::string> keys = {"dest", "files", "exclude", "level", "codedeploy"};
  return keys;
}

bool IsAbsolute(std::string_view path) { return !path.empty() && path.front() == '/'; }

// A source's text; its value is judged only once known.
std::optional<std::string> ParseSource(const ConfigNode& src, const std::string& what,
                                       Diagnostics& diags) {
  if (!ExpectScalar(src, what, diags)) return std::nullopt;
  const std::string& text = src.scalar.text;
  if (!IsKnown(src)) return text;
  if (text.empty()) {
    diags.Error(src.where, fmt::format("'{}' is empty", what));
    return std::nullopt;
  }
  if (IsAbsolute(text)) {
    diags.Error(src.where,
                fmt::format("'{}' must be relative to the step's directory, got '{}'", what, text));
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> ParseDest(const ConfigNode& dest, const std::string& what,
                                     Diagnostics& diags) {
  if (!ExpectScalar(dest, what, diags)) return std::nullopt;
  return dest.scalar.text;
}

std::optional<ZipFileSpec> ParseFileItem(const ConfigNode& item, const std::string& what,
                                         Diagnostics& diags) {
  switch (item.type) {
    case ConfigNode::Type::kScalar:
      if (std::optional<std::string> src = ParseSource(item, what, diags)) {
        return ZipFileSpec{*src, std::nullopt};
      }
      return std::nullopt;
    case ConfigNode::Type::kList:
      diags.Error(
          item.where,
          fmt::format("expected \"src\", {{src: dest}} or {{src: ..., dest: ...}} for '{}', "
                      "got a list",
                      what));
      return std::nullopt;
    case ConfigNode::Type::kMap:
      break;
  }
  // One pair whose key is neither `src` nor `dest` is the short form {src: dest}.
  if (item.fields.size() == 1 && item.fields[0].first != "src" && item.fields[0].first != "dest") {
    const std::string& src = item.fields[0].first;
    std::optional<std::string> dest = ParseDest(item.fields[0].second, what + ".dest", diags);
    if (IsAbsolute(src)) {
      SourceLocation where = item.key_locations.empty() ? item.where : item.key_locations[0];
      diags.Error(
          where,
          fmt::format("'{}' source must be relative to the step's directory, got '{}'", what, src));
      return std::nullopt;
    }
    if (!dest) return std::nullopt;
    return ZipFileSpec{src, *dest};
  }
  CheckKeys(item, {"src", "dest"}, what, diags);
  std::optional<std::string> src;
  if (const ConfigNode* node = Require(item, "src", what, diags)) {
    src = ParseSource(*node, what + ".src", diags);
  }
  ZipFileSpec spec;
  if (const ConfigNode* node = item.Find("dest")) {
    spec.dest = ParseDest(*node, what + ".dest", diags);
    if (!spec.dest) return std::nullopt;
  }
  if (!src) return std::nullopt;
  spec.src = *src;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Collecting entries.

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

// Most selection errors start with the path they are about: "source 'dist/ap' does not exist".
std::string SourceError(const std::string& error) {
  return (error.starts_with('\'') ? "zip: source " : "zip: ") + error;
}

// At the workspace root, left out of every walk (see zip.h): Git's data and the runner's
// default state directory, which holds the build records and the local store.
constexpr const char* kNeverArchived[] = {".git", ".runner"};

class Collector {
 public:
  Collector(const ZipOptions& options, std::string dir, std::string workspace,
            const std::string& skip)
      : options_(options), dir_(std::move(dir)), workspace_(std::move(workspace)) {
    if (!skip.empty()) skip_ = ResolvePath(skip, "/").value_or(skip);
    std::string root = ResolvePath(workspace_, "/").value_or(workspace_);
    for (const char* name : kNeverArchived) never_.push_back(root + "/" + name);
  }

  Status Add(const ZipFileSpec& spec);
  Result<std::vector<ZipEntry>> Finish();

 private:
  bool Excluded(const std::string& archive_path, const std::string& source_path) const;
  Status AddFile(const std::string& archive_path, const std::string& source,
                 const std::string& display, const struct stat& st);
  Status AddDirectory(const std::string& archive_path, const std::string& display);

  const ZipOptions& options_;
  std::string dir_;
  std::string workspace_;
  std::string skip_;                         // resolved; empty: nothing to skip
  std::vector<std::string> never_;           // kNeverArchived in the resolved workspace
  std::map<std::string, ZipEntry> entries_;  // by archive path: sorted bytewise
};

bool Collector::Excluded(const std::string& archive_path, const std::string& source_path) const {
  for (const std::string& pattern : options_.exclude) {
    if (GlobMatch(pattern, archive_path) || GlobMatch(pattern, source_path)) return true;
  }
  return false;
}

Status ValidArchivePath(const std::string& path, const std::string& display) {
  std::string_view problem;
  if (path.empty())
    problem = "it is empty (give the source a dest)";
  else if (path.size() > 0xFFF0)
    problem = "it is too long";
  else if (!IsValidUtf8(path))
    problem = "it is not valid UTF-8";
  for (const std::string& part : SplitPath(path)) {
    if (part == "..") problem = "'..' would leave the archive's root (give the source a dest)";
  }
  if (problem.empty()) return {};
  return Fail(fmt::format("zip: '{}' cannot be stored as '{}': {}", display, path, problem));
}

Status Collector::AddFile(const std::string& archive_path, const std::string& source,
                          const std::string& display, const struct stat& st) {
  if (auto status = ValidArchivePath(archive_path, display); !status) return status;
  auto [it, inserted] = entries_.try_emplace(archive_path);
  ZipEntry& entry = it->second;
  if (!inserted) {
    if (entry.directory) {
      return Fail(fmt::format("zip: '{}' maps to '{}', which is also a directory in the archive",
                              display, archive_path));
    }
    if (entry.source == source) return {};  // the same file named twice: harmless
    return Fail(
        fmt::format("zip: '{}' and '{}' both map to '{}' in the archive: give one of "
                    "them another dest, or exclude one",
                    entry.display, display, archive_path));
  }
  entry.archive_path = archive_path;
  entry.source = source;
  entry.display = display;
  entry.size = static_cast<std::uint64_t>(st.st_size);
  entry.executable = (st.st_mode & S_IXUSR) != 0;
  return {};
}

Status Collector::AddDirectory(const std::string& archive_path, const std::string& display) {
  if (archive_path.empty()) return {};  // the root has no entry
  if (auto status = ValidArchivePath(archive_path, display); !status) return status;
  auto [it, inserted] = entries_.try_emplace(archive_path);
  if (!inserted) {
    if (it->second.directory) return {};  // directories from several sources merge
    return Fail(
        fmt::format("zip: '{}' maps to '{}', which is also a file in the archive (from "
                    "'{}')",
                    display, archive_path, it->second.display));
  }
  it->second.archive_path = archive_path;
  it->second.directory = true;
  it->second.display = display;
  return {};
}

Status Collector::Add(const ZipFileSpec& spec) {
  const std::string& src = spec.src;
  // dest: nullopt keeps source paths; else `dest_dir` is where things go, and `dest_file`
  // (a file source only) the exact name.
  std::optional<std::string> dest_dir;
  std::optional<std::string> dest_file;
  if (spec.dest) {
    const std::string& dest = *spec.dest;
    for (const std::string& part : SplitPath(dest)) {
      if (part == "..") {
        return Fail(fmt::format("zip: dest '{}' (for '{}') must not contain '..'", dest, src));
      }
    }
    std::string normal = JoinPath(SplitPath(dest), 0, SplitPath(dest).size());
    bool is_dir = normal.empty() || dest.back() == '/';
    dest_dir = normal;
    if (!is_dir) dest_file = normal;
  }
  std::vector<std::string> parts = SplitPath(src);
  bool glob = std::any_of(parts.begin(), parts.end(),
                          [](const std::string& part) { return HasGlobSyntax(part); });
  std::string normal_src = JoinPath(parts, 0, parts.size());
  // A file, a directory's contents and a glob's matches keep their source path without a
  // dest; with one, what lies below the source goes under it, except a file source given a
  // file name.
  auto archive_path = [&](const SelectedFile& file) {
    if (!dest_dir) return file.source;
    if (dest_file && !glob && !file.directory && file.source == normal_src) return *dest_file;
    return Join(*dest_dir, file.relative);
  };
  SelectOptions select;
  select.directories = true;
  select.exclude = [&](const SelectedFile& file) {
    return (!skip_.empty() && file.path == skip_) ||
           std::find(never_.begin(), never_.end(), file.path) != never_.end() ||
           Excluded(archive_path(file), file.source);
  };
  Result<std::vector<SelectedFile>> files = SelectFiles(src, dir_, workspace_, select);
  if (!files) return Fail(SourceError(files.error()));
  for (const SelectedFile& file : *files) {
    std::string display = file.source.empty() ? "." : file.source;
    if (file.directory) {
      if (auto status = AddDirectory(archive_path(file), display); !status) return status;
      continue;
    }
    struct stat st;
    if (::stat(file.path.c_str(), &st) != 0) {
      return Fail(fmt::format("zip: cannot read '{}': {}", display, ErrnoText(errno)));
    }
    if (auto status = AddFile(archive_path(file), file.path, display, st); !status) return status;
  }
  return {};
}

Result<std::vector<ZipEntry>> Collector::Finish() {
  // Every parent directory gets its own entry, so that extraction recreates it with 0755
  // whatever the extractor's defaults are.
  std::vector<std::pair<std::string, std::string>> parents;
  for (const auto& [path, entry] : entries_) {
    size_t slash = path.rfind('/');
    while (slash != std::string::npos) {
      parents.emplace_back(path.substr(0, slash), entry.display);
      slash = slash == 0 ? std::string::npos : path.rfind('/', slash - 1);
    }
  }
  for (const auto& [parent, display] : parents) {
    auto it = entries_.find(parent);
    if (it != entries_.end() && !it->second.directory) {
      return Fail(
          fmt::format("zip: '{}' is stored as the file '{}', but '{}' needs a directory "
                      "of that name",
                      it->second.display, parent, display));
    }
    if (it == entries_.end()) {
      ZipEntry& entry = entries_[parent];
      entry.archive_path = parent;
      entry.directory = true;
      entry.display = display;
    }
  }
  std::vector<ZipEntry> out;
  out.reserve(entries_.size());
  for (auto& [path, entry] : entries_) out.push_back(std::move(entry));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing.

void Put16(std::string& out, std::uint16_t value) {
  out.push_back(static_cast<char>(value & 0xFF));
  out.push_back(static_cast<char>(value >> 8));
}

void Put32(std::string& out, std::uint32_t value) {
  Put16(out, static_cast<std::uint16_t>(value & 0xFFFF));
  Put16(out, static_cast<std::uint16_t>(value >> 16));
}

void Put64(std::string& out, std::uint64_t value) {
  Put32(out, static_cast<std::uint32_t>(value & kMax32));
  Put32(out, static_cast<std::uint32_t>(value >> 32));
}

struct DosTime {
  std::uint16_t time = 0;
  std::uint16_t date = 0;
};

DosTime ToDosTime(std::int64_t seconds) {
  // DOS time covers 1980..2107; anything outside is clamped rather than wrapped.
  constexpr std::int64_t kDosEnd = 4354819198;  // 2107-12-31T23:59:58Z
  seconds = std::clamp(seconds, kDosEpoch, kDosEnd);
  std::time_t t = static_cast<std::time_t>(seconds);
  struct tm tm;
  ::gmtime_r(&t, &tm);
  DosTime out;
  out.time = static_cast<std::uint16_t>((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
  out.date = static_cast<std::uint16_t>(((tm.tm_year + 1900 - 1980) << 9) | ((tm.tm_mon + 1) << 5) |
                                        tm.tm_mday);
  return out;
}

// One entry's header fields, shared by the local header and the central directory.
struct HeaderInfo {
  std::string name;  // with a trailing '/' for directories
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed = 0;
  std::uint64_t uncompressed = 0;
  std::uint64_t offset = 0;  // of the local header
  std::uint32_t mode = 0;    // Unix st_mode
  bool zip64_sizes = false;
};

bool IsAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::uint16_t Flags(const HeaderInfo& info) {
  return IsAscii(info.name) ? 0 : 0x0800;  // bit 11: the name is UTF-8
}

// The fields the local and the central header share: flags, method, time, CRC and sizes (which
// live in the zip64 extra field when they do not fit 32 bits).
void PutEntryFields(const HeaderInfo& info, DosTime when, std::string& out) {
  Put16(out, Flags(info));
  Put16(out, info.method);
  Put16(out, when.time);
  Put16(out, when.date);
  Put32(out, info.crc);
  Put32(out, info.zip64_sizes ? static_cast<std::uint32_t>(kMax32)
                              : static_cast<std::uint32_t>(info.compressed));
  Put32(out, info.zip64_sizes ? static_cast<std::uint32_t>(kMax32)
                              : static_cast<std::uint32_t>(info.uncompressed));
}

std::string LocalHeader(const HeaderInfo& info, DosTime when) {
  std::string out;
  Put32(out, 0x04034b50);
  Put16(out, info.zip64_sizes ? 45 : 20);
  PutEntryFields(info, when, out);
  Put16(out, static_cast<std::uint16_t>(info.name.size()));
  Put16(out, info.zip64_sizes ? 20 : 0);
  out += info.name;
  if (info.zip64_sizes) {
    Put16(out, 0x0001);
    Put16(out, 16);
    Put64(out, info.uncompressed);
    Put64(out, info.compressed);
  }
  return out;
}

void CentralHeader(const HeaderInfo& info, DosTime when, std::string& out) {
  bool zip64_offset = info.offset >= kMax32;
  std::uint16_t extra = (info.zip64_sizes ? 16 : 0) + (zip64_offset ? 8 : 0);
  bool zip64 = extra > 0;
  Put32(out, 0x02014b50);
  Put16(out, (3 << 8) | (zip64 ? 45 : 20));  // made by Unix, so the mode below counts
  Put16(out, zip64 ? 45 : 20);
  PutEntryFields(info, when, out);
  Put16(out, static_cast<std::uint16_t>(info.name.size()));
  Put16(out, extra > 0 ? extra + 4 : 0);
  Put16(out, 0);  // comment
  Put16(out, 0);  // disk
  Put16(out, 0);  // internal attributes
  std::uint32_t dos_attributes = S_ISDIR(info.mode) ? 0x10 : 0;
  Put32(out, (info.mode << 16) | dos_attributes);
  Put32(out, zip64_offset ? static_cast<std::uint32_t>(kMax32)
                          : static_cast<std::uint32_t>(info.offset));
  out += info.name;
  if (extra > 0) {
    Put16(out, 0x0001);
    Put16(out, extra);
    if (info.zip64_sizes) {
      Put64(out, info.uncompressed);
      Put64(out, info.compressed);
    }
    if (zip64_offset) Put64(out, info.offset);
  }
}

std::string EndRecords(std::uint64_t entries, std::uint64_t cd_offset, std::uint64_t cd_size) {
  std::string out;
  bool zip64 = entries >= 0xFFFF || cd_offset >= kMax32 || cd_size >= kMax32;
  if (zip64) {
    std::uint64_t record_offset = cd_offset + cd_size;
    Put32(out, 0x06064b50);
    Put64(out, 44);
    Put16(out, (3 << 8) | 45);
    Put16(out, 45);
    Put32(out, 0);
    Put32(out, 0);
    Put64(out, entries);
    Put64(out, entries);
    Put64(out, cd_size);
    Put64(out, cd_offset);
    Put32(out, 0x07064b50);  // locator
    Put32(out, 0);
    Put64(out, record_offset);
    Put32(out, 1);
  }
  Put32(out, 0x06054b50);
  Put16(out, 0);
  Put16(out, 0);
  std::uint16_t count = zip64 ? 0xFFFF : static_cast<std::uint16_t>(entries);
  Put16(out, count);
  Put16(out, count);
  Put32(out, zip64 ? static_cast<std::uint32_t>(kMax32) : static_cast<std::uint32_t>(cd_size));
  Put32(out, zip64 ? static_cast<std::uint32_t>(kMax32) : static_cast<std::uint32_t>(cd_offset));
  Put16(out, 0);
  return out;
}

// Sequential writes through a buffer, plus patches of bytes already written.
class OutputFile {
 public:
  explicit OutputFile(int fd) : fd_(fd) {}

  std::uint64_t offset() const { return offset_; }

  Status Write(std::string_view data) {
    offset_ += data.size();
    if (buffer_.size() + data.size() <= kBufferSize) {
      buffer_.append(data);
      return {};
    }
    if (auto status = Flush(); !status) return status;
    if (data.size() >= kBufferSize / 2) return WriteAll(data);
    buffer_.append(data);
    return {};
  }

  Status Flush() {
    Status status = WriteAll(buffer_);
    buffer_.clear();
    return status;
  }

  Status Patch(std::uint64_t at, std::string_view data) {
    if (auto status = Flush(); !status) return status;
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(at));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(fmt::format("zip: cannot write the archive: {}", ErrnoText(errno)));
      data.remove_prefix(static_cast<size_t>(n));
      at += static_cast<std::uint64_t>(n);
    }
    return {};
  }

 private:
  static constexpr size_t kBufferSize = 1 << 20;

  Status WriteAll(std::string_view data) {
    if (Status written = runner::WriteAll(fd_, data); !written) {
      return Fail(fmt::format("zip: cannot write the archive: {}", written.error()));
    }
    return {};
  }

  int fd_;
  std::uint64_t offset_ = 0;
  std::string buffer_;
};

// A piece of one file: the whole file when it fits one chunk.
struct Job {
  size_t entry = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool last = false;
};

struct Piece {
  std::string data;  // deflated, or the raw bytes when `stored`
  std::uint32_t crc = 0;
  bool stored = false;
  std::string error;
};

// A worker thread's compressor at one level (none for level 0), the inflate stream that finds
// block boundaries in its output, and its buffers.
struct DeflateState {
  libdeflate_compressor* compressor = nullptr;
  int level = -1;  // of `compressor`; -1: none
  z_stream inflater{};
  bool inflater_ready = false;
  std::string buffer;  // the chunk read
  std::string out;     // deflate output, reused

  DeflateState() = default;
  DeflateState(const DeflateState&) = delete;
  DeflateState& operator=(const DeflateState&) = delete;
  ~DeflateState() {
    libdeflate_free_compressor(compressor);
    if (inflater_ready) inflateEnd(&inflater);
  }

  // The compressor for `want` (1..9), or nullptr when libdeflate cannot allocate one.
  libdeflate_compressor* Compressor(int want) {
    if (want == level) return compressor;
    libdeflate_free_compressor(compressor);
    compressor = libdeflate_alloc_compressor(want);
    level = compressor != nullptr ? want : -1;
    return compressor;
  }

  // Turns the complete raw deflate stream in out[0, size) into a piece that more can follow:
  // its final block's BFINAL bit cleared, then an empty stored block (a sync marker) that ends
  // it on a byte boundary. The bit positions come from inflating it block by block, as zlib's
  // gzjoin does. Returns the new size (out keeps room for 5 more bytes), 0 on a bad stream.
  size_t EndWithSyncMarker(size_t size) {
    if (!inflater_ready) {
      if (inflateInit2(&inflater, -MAX_WBITS) != Z_OK) return 0;
      inflater_ready = true;
    } else if (inflateReset(&inflater) != Z_OK) {
      return 0;
    }
    auto* data = reinterpret_cast<Bytef*>(out.data());
    inflater.next_in = data;
    inflater.avail_in = static_cast<uInt>(size);
    size_t final_byte = 0;  // the byte and bit of the last block header seen
    unsigned final_mask = 1;
    Bytef scratch[1 << 16];
    unsigned unused = 0;  // bits past the end of the final block in its last byte
    while (true) {
      inflater.next_out = scratch;
      inflater.avail_out = sizeof(scratch);
      int rc = inflate(&inflater, Z_BLOCK);
      if (rc != Z_OK) return 0;  // Z_STREAM_END comes only after the final block's boundary
      unsigned type = static_cast<unsigned>(inflater.data_type);
      if ((type & 128) == 0) continue;
      // At a block boundary (64: the block that ended was the final one), `unused` high bits
      // of the last byte read are left: the next block's header starts at the first of them.
      unused = type & 7;
      if ((type & 64) != 0) break;
      size_t used = size - inflater.avail_in;
      final_byte = unused != 0 ? used - 1 : used;
      final_mask = unused != 0 ? 0x100u >> unused : 1u;
    }
    if (inflater.avail_in != 0) return 0;
    data[final_byte] = static_cast<Bytef>(data[final_byte] & ~final_mask);
    data[size - 1] = static_cast<Bytef>(data[size - 1] & (0xFFu >> unused));
    // The stored block's 3 header bits (all zero) fit in the unused bits, or spill into a
    // zero byte; then LEN 0 and NLEN 0xFFFF on the next byte boundary.
    if (unused < 3) out[size++] = '\0';
    for (char c : {'\0', '\0', '\xFF', '\xFF'}) out[size++] = c;
    return size;
  }
};

// The libdeflate level for a zip level (1..9): the same, except that the default 6 takes
// libdeflate's 5, which deflates smaller than zlib's (and Info-ZIP's) 6 at twice the speed of
// libdeflate's 6 (bench/zip.sh).
int LibdeflateLevel(int level) { return level == 6 ? 5 : level; }

// Reads and deflates jobs on a WorkerPool, ahead of the writer by a bounded window. The
// deflated bytes depend only on the job (never on which thread ran it), which keeps the
// archive deterministic. A file split into several jobs becomes one deflate stream: each
// piece is deflated on its own with libdeflate (no dictionary: 1 MiB pieces lose about 0.2%),
// and every piece but the last is made non-final and byte-aligned with a sync marker.
class DeflateWindow {
 public:
  DeflateWindow(const std::vector<ZipEntry>& entries, const std::vector<Job>& jobs, int level,
                size_t threads)
      : entries_(entries), jobs_(jobs), level_(level), pool_(threads, kMaxInFlightJobs) {}

  // Blocks until job `i` is done and hands its piece over. REQUIRES: jobs are taken in order.
  Result<Piece> Take(size_t i, const std::function<bool()>& cancelled) {
    // The window never exceeds kMaxInFlightJobs, so Submit never blocks on the pool's queue.
    while (next_ < jobs_.size() &&
           (next_ == i || (next_ - i < kMaxInFlightJobs &&
                           in_flight_ + jobs_[next_].length <= kMaxInFlightBytes))) {
      const Job& job = jobs_[next_++];
      in_flight_ += job.length;
      window_.push_back(pool_.Submit([this, &job] { return Deflate(job); }));
    }
    std::future<Piece> next = std::move(window_.front());
    window_.pop_front();
    in_flight_ -= jobs_[i].length;
    // Asked for every piece, and every 50 ms while the writer waits for one: a cancel is seen
    // however fast the workers are.
    if (cancelled && cancelled()) return Fail("zip: cancelled");
    while (next.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (cancelled && cancelled()) return Fail("zip: cancelled");
    }
    Piece piece = next.get();
    if (!piece.error.empty()) return Fail(piece.error);
    return piece;
  }

 private:
  // How far the workers may run ahead of the writer: bounds memory, whatever the file sizes.
  static constexpr std::uint64_t kMaxInFlightBytes = 48u << 20;
  static constexpr size_t kMaxInFlightJobs = 4096;

  // Runs on a worker thread.
  Piece Deflate(const Job& job) const {
    // Each worker keeps its compressor and buffers across jobs: allocating them per job would
    // cost more than small files take to deflate.
    thread_local DeflateState state;
    std::string& buffer = state.buffer;
    std::string& out = state.out;
    Piece piece;
    const ZipEntry& entry = entries_[job.entry];
    int fd = ::open(entry.source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      piece.error = fmt::format("zip: cannot read '{}': {}", entry.display, ErrnoText(errno));
      return piece;
    }
    buffer.resize(job.length);
    std::uint64_t have = 0;
    int read_error = 0;
    off_t start = static_cast<off_t>(job.offset);
    while (have < job.length) {
      ssize_t n =
          ::pread(fd, buffer.data() + have, job.length - have, start + static_cast<off_t>(have));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) read_error = errno;
      if (n <= 0) break;
      have += static_cast<std::uint64_t>(n);
    }
    bool grew = false;
    if (have == job.length && job.last) {
      char byte;
      grew = ::pread(fd, &byte, 1, start + static_cast<off_t>(have)) > 0;
    }
    ::close(fd);
    if (read_error != 0) {
      piece.error = fmt::format("zip: cannot read '{}': {}", entry.display, ErrnoText(read_error));
      return piece;
    }
    if (have < job.length || grew) {
      piece.error = fmt::format("zip: '{}' changed while it was being zipped", entry.display);
      return piece;
    }
    piece.crc = libdeflate_crc32(0, buffer.data(), job.length);
    if (level_ == 0) {
      piece.stored = true;
      piece.data = buffer;
      return piece;
    }
    libdeflate_compressor* compressor = state.Compressor(LibdeflateLevel(level_));
    if (compressor == nullptr) {
      piece.error = "zip: libdeflate failed to initialize";
      return piece;
    }
    // Deflate into the worker's own buffer and copy out only what was produced: sizing each
    // piece to the bound would zero-fill a chunk's worth of memory per job.
    size_t bound = libdeflate_deflate_compress_bound(compressor, job.length);
    if (out.size() < bound + 5) out.resize(bound + 5);
    size_t produced =
        libdeflate_deflate_compress(compressor, buffer.data(), job.length, out.data(), bound);
    if (produced != 0 && !job.last) produced = state.EndWithSyncMarker(produced);
    if (produced == 0) {
      piece.error = fmt::format("zip: deflate failed on '{}'", entry.display);
      return piece;
    }
    // A whole file that does not shrink is stored, as Info-ZIP does.
    if (job.offset == 0 && job.last && produced >= job.length) {
      piece.stored = true;
      piece.data = buffer;
      return piece;
    }
    piece.data.assign(out, 0, produced);
    return piece;
  }

  const std::vector<ZipEntry>& entries_;
  const std::vector<Job>& jobs_;
  const int level_;
  size_t next_ = 0;              // the first job not submitted
  std::uint64_t in_flight_ = 0;  // bytes of the jobs submitted and not taken
  std::deque<std::future<Piece>> window_;
  // Last: destroyed first, so no task outlives what it reads.
  WorkerPool pool_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

ZipOptions ZipKind::Parse(const ConfigNode& config, Diagnostics& diags) const {
  ZipOptions options;
  if (!ExpectMap(config, "zip", diags)) return options;
  CheckKeys(config, ZipKeys(), "zip", diags);
  if (const ConfigNode* dest = Require(config, "dest", "zip", diags)) {
    if (ExpectScalar(*dest, "zip.dest", diags)) {
      const std::string& text = dest->scalar.text;
      if (IsKnown(*dest) && (text.empty() || text.back() == '/')) {
        diags.Error(dest->where,
                    fmt::format("'zip.dest' must name the archive file, got '{}'", text));
      } else if (IsKnown(*dest) && text.starts_with('/')) {
        diags.Error(dest->where,
                    fmt::format("'zip.dest' must be a path relative to the step's directory "
                                "(inside the workspace), got the absolute path '{}'",
                                text));
      }
      options.dest = text;
    }
  }
  if (const ConfigNode* files = Require(config, "files", "zip", diags)) {
    if (ExpectList(*files, "zip.files", diags)) {
      if (files->items.empty()) {
        diags.Error(files->where, "'zip.files' is empty: list at least one source");
      }
      for (size_t i = 0; i < files->items.size(); ++i) {
        std::optional<ZipFileSpec> spec =
            ParseFileItem(files->items[i], fmt::format("zip.files[{}]", i), diags);
        if (spec) options.files.push_back(std::move(*spec));
      }
    }
  }
  if (const ConfigNode* exclude = config.Find("exclude")) {
    if (auto patterns = ExpectScalarOrList(*exclude, "zip.exclude", diags)) {
      for (const ConfigNode* pattern : *patterns) options.exclude.push_back(pattern->scalar.text);
    }
  }
  if (const ConfigNode* level = config.Find("level")) {
    if (std::optional<std::int64_t> value = ExpectInteger(*level, "zip.level", 0, 9, diags)) {
      options.level = static_cast<int>(*value);
    }
  }
  if (const ConfigNode* codedeploy = config.Find("codedeploy")) {
    if (!IsKnown(*codedeploy)) {
      ExpectScalar(*codedeploy, "zip.codedeploy", diags);
    } else if (std::optional<bool> value = ExpectBool(*codedeploy, "zip.codedeploy", diags)) {
      options.codedeploy = *value;
    }
  }
  return options;
}

Result<std::vector<ZipEntry>> CollectZipEntries(const ZipOptions& options, const std::string& dir,
                                                const std::string& workspace,
                                                const std::string& skip) {
  Collector collector(options, dir, workspace, skip);
  for (const ZipFileSpec& spec : options.files) {
    if (auto status = collector.Add(spec); !status) return Fail(status.error());
  }
  return collector.Finish();
}

Result<std::int64_t> ZipTimestamp(const Environment& env) {
  std::optional<std::string> text = Lookup(env, "SOURCE_DATE_EPOCH");
  if (!text || text->empty()) return kDosEpoch;
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size()) {
    return Fail(
        fmt::format("zip: SOURCE_DATE_EPOCH must be whole seconds since 1970, got '{}'", *text));
  }
  return value;
}

Result<ZipWriteStats> WriteZip(const std::vector<ZipEntry>& entries, const ZipWriteOptions& options,
                               int fd) {
  std::size_t chunk = std::max<std::size_t>(options.chunk_size, 64 * 1024);
  std::vector<Job> jobs;
  std::vector<size_t> first_job(entries.size(), 0);
  for (size_t i = 0; i < entries.size(); ++i) {
    first_job[i] = jobs.size();
    const ZipEntry& entry = entries[i];
    if (entry.directory || entry.size == 0) continue;
    for (std::uint64_t offset = 0; offset < entry.size; offset += chunk) {
      Job job;
      job.entry = i;
      job.offset = offset;
      job.length = std::min<std::uint64_t>(chunk, entry.size - offset);
      job.last = offset + job.length == entry.size;
      jobs.push_back(job);
    }
  }
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<int>(threads, static_cast<int>(std::max<size_t>(1, jobs.size())));
  DeflateWindow pool(entries, jobs, options.level, static_cast<size_t>(threads));

  DosTime when = ToDosTime(options.mtime);
  OutputFile out(fd);
  ZipWriteStats stats;
  std::string central;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (options.cancelled && options.cancelled()) return Fail("zip: cancelled");
    const ZipEntry& entry = entries[i];
    HeaderInfo info;
    info.name = entry.directory ? entry.archive_path + "/" : entry.archive_path;
    info.offset = out.offset();
    info.mode = entry.directory ? (S_IFDIR | 0755) : (S_IFREG | (entry.executable ? 0755 : 0644));
    info.uncompressed = entry.directory ? 0 : entry.size;
    info.zip64_sizes = info.uncompressed >= kZip64SizeThreshold;
    stats.input_bytes += info.uncompressed;
    size_t job_count = (i + 1 < entries.size() ? first_job[i + 1] : jobs.size()) - first_job[i];
    if (job_count == 0) {
      if (auto status = out.Write(LocalHeader(info, when)); !status) return Fail(status.error());
    } else if (job_count == 1) {
      Result<Piece> piece = pool.Take(first_job[i], options.cancelled);
      if (!piece) return Fail(piece.error());
      info.method = piece->stored ? 0 : 8;
      info.crc = piece->crc;
      info.compressed = piece->data.size();
      if (auto status = out.Write(LocalHeader(info, when)); !status) return Fail(status.error());
      if (auto status = out.Write(piece->data); !status) return Fail(status.error());
    } else {
      // The sizes and CRC are known only at the end: write the header, then patch it in place
      // (same length), so that readers never need data descriptors.
      info.method = options.level == 0 ? 0 : 8;
      if (auto status = out.Write(LocalHeader(info, when)); !status) return Fail(status.error());
      for (size_t j = first_job[i]; j < first_job[i] + job_count; ++j) {
        Result<Piece> piece = pool.Take(j, options.cancelled);
        if (!piece) return Fail(piece.error());
        info.crc = static_cast<std::uint32_t>(
            crc32_combine(info.crc, piece->crc, static_cast<z_off_t>(jobs[j].length)));
        info.compressed += piece->data.size();
        if (auto status = out.Write(piece->data); !status) return Fail(status.error());
      }
      if (!info.zip64_sizes && info.compressed >= kMax32) {
        return Fail(fmt::format("zip: '{}' deflated beyond 4 GiB", entry.display));
      }
      if (auto status = out.Patch(info.offset, LocalHeader(info, when)); !status) {
        return Fail(status.error());
      }
    }
    CentralHeader(info, when, central);
  }
  std::uint64_t cd_offset = out.offset();
  if (auto status = out.Write(central); !status) return Fail(status.error());
  if (auto status = out.Write(EndRecords(entries.size(), cd_offset, central.size())); !status) {
    return Fail(status.error());
  }
  if (auto status = out.Flush(); !status) return Fail(status.error());
  stats.output_bytes = out.offset();
  return stats;
}

Status ZipKind::Run(const ZipOptions& options, StepIo& io) const {
  auto started = std::chrono::steady_clock::now();
  std::string dest = fs::path(io.dir() + "/" + options.dest).lexically_normal().string();
  // Judged after symlinks: `../x.zip` and a dest below a linked directory that points out of
  // the workspace are both refused before anything is read.
  if (auto inside = ResolveInWorkspace(options.dest, io.dir(), io.workspace()); !inside) {
    return Fail("zip: dest " + inside.error() + ": write the archive inside the workspace");
  }
  Result<std::int64_t> mtime = ZipTimestamp(io.env());
  if (!mtime) return Fail(mtime.error());
  Result<std::vector<ZipEntry>> entries =
      CollectZipEntries(options, io.dir(), io.workspace(), dest);
  if (!entries) return Fail(entries.error());
  if (io.cancelled()) return Fail("zip: cancelled");

  // The archive is written beside dest and renamed into place: no half archive, ever.
  AtomicFileWriter temp;
  if (auto status = temp.Open(dest); !status) return Fail("zip: " + status.error());
  ZipWriteOptions write;
  write.level = options.level;
  write.mtime = *mtime;
  write.cancelled = [&io] { return io.cancelled(); };
  Result<ZipWriteStats> stats = WriteZip(*entries, write, temp.fd());
  if (!stats) return Fail(stats.error());

  if (options.codedeploy) {
    // The archive as written is what gets checked: the revision CodeDeploy would receive.
    Result<Revision> revision = ReadRevision(temp.temp_path());
    if (!revision) return Fail(revision.error());
    std::string appspec_name = "appspec.yml";
    for (const ZipEntry& entry : *entries) {
      if (entry.archive_path == "appspec.yml" && !entry.directory) {
        appspec_name = WorkspaceRelative(io.dir() + "/" + entry.display, io.workspace());
      }
    }
    Diagnostics diags(appspec_name, revision->appspec);
    ValidateAppSpec(*revision, diags);
    if (!diags.diagnostics().empty()) io.Log(diags.Format());
    if (diags.HasErrors()) {
      return Fail(
          fmt::format("zip: {} is not a valid CodeDeploy revision (see above); the archive "
                      "was not written",
                      options.dest));
    }
  }
  if (io.cancelled()) return Fail("zip: cancelled");
  Result<std::string> sha256 = FileSha256Hex(temp.temp_path());
  if (!sha256) return Fail(sha256.error());
  if (auto status = temp.Commit(); !status) return Fail("zip: " + status.error());

  std::string path = WorkspaceRelative(dest, io.workspace());
  io.SetOutput("path", path);
  io.SetOutput("size", std::to_string(stats->output_bytes));
  io.SetOutput("sha256", *sha256);
  io.AddArtifact(Artifact{path, stats->output_bytes, *sha256, ""});
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  io.Log(fmt::format("zip: {}: {} entries, {} -> {} in {:.2f}s, sha256 {}\n", path, entries->size(),
                     HumanBytes(stats->input_bytes), HumanBytes(stats->output_bytes), seconds,
                     *sha256));
  return {};
}

}  // namespace runner
