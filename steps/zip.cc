#include "steps/zip.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "runner/atomic_file.h"
#include "runner/expression.h"
#include "runner/fs.h"
#include "runner/glob.h"
#include "runner/path.h"
#include "runner/sha256.h"
#include "runner/utf8.h"
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

void ValidateFileItem(const ConfigNode& item, const std::string& what, Diagnostics& diags) {
  auto check_src = [&](const ConfigNode& src, const std::string& src_what) {
    if (!ExpectScalar(src, src_what, diags)) return;
    if (src.scalar.text.empty()) {
      diags.Error(src.where, fmt::format("'{}' is empty", src_what));
    } else if (IsAbsolute(src.scalar.text)) {
      diags.Error(src.where, fmt::format("'{}' must be relative to the step's directory, got '{}'",
                                         src_what, src.scalar.text));
    }
  };
  switch (item.type) {
    case ConfigNode::Type::kScalar:
      check_src(item, what);
      return;
    case ConfigNode::Type::kList:
      diags.Error(
          item.where,
          fmt::format("expected \"src\", {{src: dest}} or {{src: ..., dest: ...}} for '{}', "
                      "got a list",
                      what));
      return;
    case ConfigNode::Type::kMap:
      break;
  }
  // One pair whose key is neither `src` nor `dest` is the short form {src: dest}.
  if (item.fields.size() == 1 && item.fields[0].first != "src" && item.fields[0].first != "dest") {
    ExpectScalar(item.fields[0].second, what + ".dest", diags);
    if (IsAbsolute(item.fields[0].first)) {
      SourceLocation where = item.key_locations.empty() ? item.where : item.key_locations[0];
      diags.Error(
          where, fmt::format("'{}' source must be relative to the step's directory, got '{}'", what,
                             item.fields[0].first));
    }
    return;
  }
  CheckKeys(item, {"src", "dest"}, what, diags);
  if (const ConfigNode* src = Require(item, "src", what, diags)) check_src(*src, what + ".src");
  if (const ConfigNode* dest = item.Find("dest")) ExpectScalar(*dest, what + ".dest", diags);
}

void ValidateZip(const ConfigNode& config, Diagnostics& diags) {
  if (!ExpectMap(config, "zip", diags)) return;
  CheckKeys(config, ZipKeys(), "zip", diags);
  if (const ConfigNode* dest = Require(config, "dest", "zip", diags)) {
    if (ExpectScalar(*dest, "zip.dest", diags)) {
      const std::string& text = dest->scalar.text;
      if (text.empty() || text.back() == '/') {
        diags.Error(dest->where,
                    fmt::format("'zip.dest' must name the archive file, got '{}'", text));
      }
    }
  }
  if (const ConfigNode* files = Require(config, "files", "zip", diags)) {
    if (ExpectList(*files, "zip.files", diags)) {
      if (files->items.empty()) {
        diags.Error(files->where, "'zip.files' is empty: list at least one source");
      }
      for (size_t i = 0; i < files->items.size(); ++i) {
        ValidateFileItem(files->items[i], fmt::format("zip.files[{}]", i), diags);
      }
    }
  }
  if (const ConfigNode* exclude = config.Find("exclude")) {
    ExpectScalarOrList(*exclude, "zip.exclude", diags);
  }
  if (const ConfigNode* level = config.Find("level"))
    ExpectInteger(*level, "zip.level", 0, 9, diags);
  if (const ConfigNode* codedeploy = config.Find("codedeploy")) {
    if (codedeploy->type != ConfigNode::Type::kScalar || !HasExpression(codedeploy->scalar.text)) {
      ExpectBool(*codedeploy, "zip.codedeploy", diags);
    }
  }
}

Result<std::string> JsonString(const nlohmann::ordered_json& value, std::string_view what) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_boolean()) return value.dump();
  return Fail(fmt::format("zip: '{}' must be a string", what));
}

// ---------------------------------------------------------------------------------------------
// Paths.

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

std::optional<std::string> RealPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return std::nullopt;
  std::string out(resolved);
  std::free(resolved);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Collecting entries.

class Collector {
 public:
  Collector(const ZipOptions& options, std::string dir, std::string workspace, std::string skip)
      : options_(options), dir_(std::move(dir)), workspace_(std::move(workspace)) {
    if (auto real = RealPath(workspace_))
      workspace_real_ = *real;
    else
      workspace_real_ = workspace_;
    struct stat st;
    if (!skip.empty() && ::stat(skip.c_str(), &st) == 0) skip_ = {st.st_dev, st.st_ino};
  }

  Status Add(const ZipFileSpec& spec);
  Result<std::vector<ZipEntry>> Finish();

 private:
  // A glob source being walked: files whose source path matches `pattern` are added.
  struct Glob {
    std::string pattern;
    size_t depth = 0;  // components of the pattern; unlimited with `**`
    bool any_depth = false;
    size_t matched = 0;
    size_t excluded = 0;
  };

  bool Excluded(const std::string& archive_path, const std::string& source_path) const;
  Status CheckInside(const std::string& real, const std::string& display) const;
  Status AddFile(const std::string& archive_path, const std::string& source,
                 const std::string& display, const struct stat& st);
  Status AddDirectory(const std::string& archive_path, const std::string& display);
  Status Walk(const std::string& abs_dir, const std::string& real_dir, const std::string& rel_dir,
              const std::string& archive_dir, Glob* glob);

  const ZipOptions& options_;
  std::string dir_;
  std::string workspace_;
  std::string workspace_real_;
  std::optional<std::pair<dev_t, ino_t>> skip_;
  std::map<std::string, ZipEntry> entries_;  // by archive path: sorted bytewise
};

bool Collector::Excluded(const std::string& archive_path, const std::string& source_path) const {
  for (const std::string& pattern : options_.exclude) {
    if (GlobMatch(pattern, archive_path) || GlobMatch(pattern, source_path)) return true;
  }
  return false;
}

Status Collector::CheckInside(const std::string& real, const std::string& display) const {
  if (IsWithin(real, workspace_real_)) return {};
  return Fail(fmt::format("zip: '{}' resolves to {}, outside the workspace {}", display, real,
                          workspace_real_));
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

Status Collector::Walk(const std::string& abs_dir, const std::string& real_dir,
                       const std::string& rel_dir, const std::string& archive_dir, Glob* glob) {
  std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(abs_dir.c_str()), ::closedir);
  if (!handle)
    return Fail(fmt::format("zip: cannot read directory '{}': {}", rel_dir, ErrnoText(errno)));
  std::vector<std::string> names;
  while (struct dirent* item = ::readdir(handle.get())) {
    std::string_view name = item->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  handle.reset();
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string abs = abs_dir + "/" + name;
    std::string rel = Join(rel_dir, name);
    std::string archive = Join(archive_dir, name);
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) {
      return Fail(fmt::format("zip: cannot read '{}': {}", rel, ErrnoText(errno)));
    }
    if (skip_ && st.st_dev == skip_->first && st.st_ino == skip_->second) continue;
    std::string real = real_dir + "/" + name;
    if (S_ISLNK(st.st_mode)) {
      std::optional<std::string> target = RealPath(abs);
      if (!target) {
        return Fail(fmt::format("zip: symlink '{}' points to nothing ({})", rel, ErrnoText(errno)));
      }
      if (auto status = CheckInside(*target, "symlink " + rel); !status) return status;
      if (::stat(target->c_str(), &st) != 0) {
        return Fail(fmt::format("zip: cannot read '{}': {}", rel, ErrnoText(errno)));
      }
      if (S_ISDIR(st.st_mode) && IsWithin(real_dir, *target)) {
        return Fail(
            fmt::format("zip: symlink '{}' points to its own parent {}: a loop", rel, *target));
      }
      real = *target;
    }
    if (Excluded(archive, rel)) {
      if (glob && S_ISREG(st.st_mode) && GlobMatch(glob->pattern, rel)) ++glob->excluded;
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (glob && !glob->any_depth && SplitPath(rel).size() >= glob->depth) continue;
      if (!glob) {
        if (auto status = AddDirectory(archive, rel); !status) return status;
      }
      if (auto status = Walk(abs, real, rel, archive, glob); !status) return status;
    } else if (S_ISREG(st.st_mode)) {
      if (glob) {
        if (!GlobMatch(glob->pattern, rel)) continue;
        ++glob->matched;
      }
      if (auto status = AddFile(archive, real, rel, st); !status) return status;
    } else if (!glob) {
      return Fail(fmt::format("zip: '{}' is not a regular file, directory or symlink", rel));
    }
  }
  return {};
}

Status Collector::Add(const ZipFileSpec& spec) {
  const std::string& src = spec.src;
  if (src.empty()) return Fail("zip: a files entry has an empty src");
  if (IsAbsolute(src)) {
    return Fail(fmt::format("zip: source '{}' must be relative to the step's directory", src));
  }
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
  size_t fixed = 0;
  while (fixed < parts.size() && !HasGlobSyntax(parts[fixed])) ++fixed;
  std::string rel = JoinPath(parts, 0, fixed);

  if (fixed < parts.size()) {
    // A glob: walk from its fixed prefix, keep the path below it.
    Glob glob;
    glob.pattern = JoinPath(parts, 0, parts.size());
    glob.depth = parts.size();
    glob.any_depth = glob.pattern.find("**") != std::string::npos;
    std::string abs = rel.empty() ? dir_ : dir_ + "/" + rel;
    struct stat st;
    std::optional<std::string> real = RealPath(abs);
    if (real && ::stat(real->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (auto status = CheckInside(*real, rel.empty() ? "." : rel); !status) return status;
      std::string archive_dir = dest_dir ? *dest_dir : rel;
      if (auto status = Walk(abs, *real, rel, archive_dir, &glob); !status) return status;
    }
    if (glob.matched == 0) {
      if (glob.excluded > 0) {
        return Fail(
            fmt::format("zip: '{}' matches only excluded files ({} excluded)", src, glob.excluded));
      }
      return Fail(fmt::format("zip: '{}' matches no file (in {})", src, dir_));
    }
    return {};
  }

  std::string abs = rel.empty() ? dir_ : dir_ + "/" + rel;
  std::string display = rel.empty() ? "." : rel;
  std::optional<std::string> real = RealPath(abs);
  struct stat st;
  if (::lstat(abs.c_str(), &st) != 0) {
    return Fail(fmt::format("zip: source '{}' does not exist (in {})", src, dir_));
  }
  if (!real || ::stat(real->c_str(), &st) != 0) {
    return Fail(fmt::format("zip: source '{}' is a symlink that points to nothing", src));
  }
  if (auto status = CheckInside(*real, display); !status) return status;
  if (S_ISDIR(st.st_mode)) {
    std::string archive_dir = dest_file ? *dest_file : dest_dir ? *dest_dir : rel;
    if (auto status = AddDirectory(archive_dir, display); !status) return status;
    return Walk(abs, *real, rel, archive_dir, nullptr);
  }
  if (src.back() == '/') return Fail(fmt::format("zip: source '{}' is not a directory", src));
  if (!S_ISREG(st.st_mode)) {
    return Fail(fmt::format("zip: source '{}' is not a regular file or directory", src));
  }
  std::string archive;
  if (dest_file)
    archive = *dest_file;
  else if (dest_dir)
    archive = Join(*dest_dir, parts.back());
  else
    archive = rel;
  if (Excluded(archive, rel)) return {};
  return AddFile(archive, *real, display, st);
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
  bool done = false;
  std::string data;  // deflated, or the raw bytes when `stored`
  std::uint32_t crc = 0;
  bool stored = false;
  std::string error;
};

// Reads and deflates jobs on worker threads, ahead of the writer by a bounded window. The
// deflated bytes depend only on the job (never on which thread ran it), which keeps the
// archive deterministic. A file split into several jobs becomes one deflate stream: every
// piece but the last ends with a sync flush (byte-aligned, not final), and each piece is
// primed with the 32 KiB before it, so the split costs almost nothing in size (as pigz does).
class DeflatePool {
 public:
  DeflatePool(const std::vector<ZipEntry>& entries, const std::vector<Job>& jobs, int level,
              int threads)
      : entries_(entries), jobs_(jobs), level_(level), pieces_(jobs.size()) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }

  ~DeflatePool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  // Blocks until job `i` is done and hands its piece over. Jobs are taken in order.
  Result<Piece> Take(size_t i, const std::function<bool()>& cancelled) {
    std::unique_lock lock(mu_);
    while (!pieces_[i].done) {
      if (cancelled && cancelled()) return Fail("zip: cancelled");
      done_cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    Piece piece = std::move(pieces_[i]);
    pieces_[i] = Piece();
    taken_ = i + 1;
    in_flight_ -= jobs_[i].length;
    lock.unlock();
    work_cv_.notify_all();
    if (!piece.error.empty()) return Fail(piece.error);
    return piece;
  }

 private:
  // How far the workers may run ahead of the writer: bounds memory, whatever the file sizes.
  static constexpr std::uint64_t kMaxInFlightBytes = 48u << 20;
  static constexpr size_t kMaxInFlightJobs = 4096;

  void Work() {
    z_stream stream{};
    bool deflating = level_ > 0;
    if (deflating &&
        deflateInit2(&stream, level_, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      deflating = false;
    }
    std::string buffer;  // the chunk read, after up to 32 KiB of dictionary
    std::string out;     // deflate output, reused
    while (true) {
      size_t i;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] {
          if (stop_ || next_ >= jobs_.size()) return true;
          if (next_ == taken_) return true;  // the writer waits for this one
          return next_ - taken_ < kMaxInFlightJobs &&
                 in_flight_ + jobs_[next_].length <= kMaxInFlightBytes;
        });
        if (stop_ || next_ >= jobs_.size()) break;
        i = next_++;
        in_flight_ += jobs_[i].length;
      }
      Piece piece = Run(jobs_[i], level_ > 0 && !deflating ? nullptr : &stream, buffer, out);
      {
        std::lock_guard lock(mu_);
        pieces_[i] = std::move(piece);
        pieces_[i].done = true;
      }
      done_cv_.notify_all();
    }
    if (deflating) deflateEnd(&stream);
  }

  Piece Run(const Job& job, z_stream* stream, std::string& buffer, std::string& out) {
    Piece piece;
    const ZipEntry& entry = entries_[job.entry];
    if (stream == nullptr) {
      piece.error = "zip: zlib failed to initialize";
      return piece;
    }
    bool deflate_it = level_ > 0;
    std::uint64_t dictionary = deflate_it ? std::min<std::uint64_t>(job.offset, 32768) : 0;
    int fd = ::open(entry.source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      piece.error = fmt::format("zip: cannot read '{}': {}", entry.display, ErrnoText(errno));
      return piece;
    }
    buffer.resize(dictionary + job.length);
    std::uint64_t want = dictionary + job.length;
    std::uint64_t have = 0;
    int read_error = 0;
    off_t start = static_cast<off_t>(job.offset - dictionary);
    while (have < want) {
      ssize_t n = ::pread(fd, buffer.data() + have, want - have, start + static_cast<off_t>(have));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) read_error = errno;
      if (n <= 0) break;
      have += static_cast<std::uint64_t>(n);
    }
    bool grew = false;
    if (have == want && job.last) {
      char byte;
      grew = ::pread(fd, &byte, 1, start + static_cast<off_t>(want)) > 0;
    }
    ::close(fd);
    if (read_error != 0) {
      piece.error = fmt::format("zip: cannot read '{}': {}", entry.display, ErrnoText(read_error));
      return piece;
    }
    if (have < want || grew) {
      piece.error = fmt::format("zip: '{}' changed while it was being zipped", entry.display);
      return piece;
    }
    const auto* data = reinterpret_cast<const Bytef*>(buffer.data() + dictionary);
    piece.crc = static_cast<std::uint32_t>(crc32_z(0, data, job.length));
    if (!deflate_it) {
      piece.stored = true;
      piece.data.assign(buffer, dictionary, job.length);
      return piece;
    }
    deflateReset(stream);
    if (dictionary > 0) {
      deflateSetDictionary(stream, reinterpret_cast<const Bytef*>(buffer.data()),
                           static_cast<uInt>(dictionary));
    }
    // Deflate into the worker's own buffer and copy out only what was produced: sizing each
    // piece to deflateBound would zero-fill a chunk's worth of memory per job.
    if (out.size() < deflateBound(stream, static_cast<uLong>(job.length)) + 64) {
      out.resize(deflateBound(stream, static_cast<uLong>(job.length)) + 64);
    }
    stream->next_in = const_cast<Bytef*>(data);
    stream->avail_in = static_cast<uInt>(job.length);
    int flush = job.last ? Z_FINISH : Z_SYNC_FLUSH;
    size_t produced = 0;
    while (true) {
      stream->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      stream->avail_out = static_cast<uInt>(out.size() - produced);
      int rc = deflate(stream, flush);
      produced = out.size() - stream->avail_out;
      if (rc == Z_STREAM_ERROR) {
        piece.error = fmt::format("zip: deflate failed on '{}'", entry.display);
        return piece;
      }
      if (flush == Z_FINISH && rc == Z_STREAM_END) break;
      if (flush == Z_SYNC_FLUSH && stream->avail_in == 0 && stream->avail_out > 0) break;
      if (stream->avail_out == 0) out.resize(out.size() * 2);
    }
    piece.data.assign(out, 0, produced);
    // A whole file that does not shrink is stored, as Info-ZIP does.
    if (job.offset == 0 && job.last && piece.data.size() >= job.length) {
      piece.stored = true;
      piece.data.assign(buffer, dictionary, job.length);
    }
    return piece;
  }

  const std::vector<ZipEntry>& entries_;
  const std::vector<Job>& jobs_;
  int level_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  size_t next_ = 0;
  size_t taken_ = 0;
  std::uint64_t in_flight_ = 0;
  bool stop_ = false;
  std::vector<Piece> pieces_;
  std::vector<std::thread> threads_;
};

Status ExecuteZip(const nlohmann::ordered_json& config, StepIo& io) {
  Result<ZipOptions> options = ParseZipOptions(config);
  if (!options) return Fail(options.error());
  return RunZip(*options, io);
}

std::string HumanBytes(std::uint64_t bytes) {
  if (bytes < 10 * 1024) return fmt::format("{} B", bytes);
  if (bytes < 10 * 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024.0));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Result<ZipOptions> ParseZipOptions(const nlohmann::ordered_json& config) {
  if (!config.is_object()) return Fail("zip: the configuration must be a mapping");
  ZipOptions options;
  for (const auto& [key, value] : config.items()) {
    if (std::find(ZipKeys().begin(), ZipKeys().end(), key) == ZipKeys().end()) {
      return Fail(fmt::format("zip: unknown key '{}'", key));
    }
  }
  if (!config.contains("dest")) return Fail("zip: missing 'dest'");
  Result<std::string> dest = JsonString(config["dest"], "dest");
  if (!dest) return Fail(dest.error());
  if (dest->empty() || dest->back() == '/') {
    return Fail(fmt::format("zip: 'dest' must name the archive file, got '{}'", *dest));
  }
  options.dest = *dest;

  if (!config.contains("files") || !config["files"].is_array() || config["files"].empty()) {
    return Fail("zip: 'files' must be a list of at least one source");
  }
  for (const auto& item : config["files"]) {
    ZipFileSpec spec;
    if (item.is_string()) {
      spec.src = item.get<std::string>();
    } else if (item.is_object() && (item.contains("src") || item.contains("dest"))) {
      if (!item.contains("src")) return Fail("zip: a files entry has 'dest' but no 'src'");
      Result<std::string> src = JsonString(item["src"], "files[].src");
      if (!src) return Fail(src.error());
      spec.src = *src;
      if (item.contains("dest")) {
        Result<std::string> item_dest = JsonString(item["dest"], "files[].dest");
        if (!item_dest) return Fail(item_dest.error());
        spec.dest = *item_dest;
      }
    } else if (item.is_object() && item.size() == 1) {
      spec.src = item.begin().key();
      Result<std::string> item_dest = JsonString(item.begin().value(), "files[].dest");
      if (!item_dest) return Fail(item_dest.error());
      spec.dest = *item_dest;
    } else {
      return Fail(
          fmt::format("zip: a files entry must be \"src\", {{src: dest}} or {{src, dest}}, "
                      "got {}",
                      item.dump()));
    }
    options.files.push_back(std::move(spec));
  }

  if (config.contains("exclude")) {
    const auto& exclude = config["exclude"];
    if (exclude.is_string()) {
      options.exclude.push_back(exclude.get<std::string>());
    } else if (exclude.is_array()) {
      for (const auto& pattern : exclude) {
        if (!pattern.is_string()) return Fail("zip: 'exclude' must be a list of globs");
        options.exclude.push_back(pattern.get<std::string>());
      }
    } else {
      return Fail("zip: 'exclude' must be a glob or a list of globs");
    }
  }

  if (config.contains("level")) {
    Result<std::string> text = JsonString(config["level"], "level");
    if (!text) return Fail(text.error());
    int level = -1;
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), level);
    if (error != std::errc() || end != text->data() + text->size() || level < 0 || level > 9) {
      return Fail(fmt::format("zip: 'level' must be a whole number from 0 to 9, got '{}'", *text));
    }
    options.level = level;
  }

  if (config.contains("codedeploy")) {
    Result<std::string> text = JsonString(config["codedeploy"], "codedeploy");
    if (!text) return Fail(text.error());
    if (*text != "true" && *text != "false") {
      return Fail(fmt::format("zip: 'codedeploy' must be true or false, got '{}'", *text));
    }
    options.codedeploy = *text == "true";
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
  DeflatePool pool(entries, jobs, options.level, threads);

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

Status RunZip(const ZipOptions& options, StepIo& io) {
  auto started = std::chrono::steady_clock::now();
  std::string dest = fs::path(io.dir() + "/" + options.dest).lexically_normal().string();
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

const LegacyStepKind kZipStep = {
    .name = "zip",
    .default_kill_grace = std::chrono::seconds(10),
    .validate = ValidateZip,
    .execute = ExecuteZip,
};

}  // namespace runner
