#include "runner/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace runner {

namespace {

std::string ErrnoMessage(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + ErrnoText(errno);
}

}  // namespace

AtomicFileWriter::~AtomicFileWriter() { Discard(); }

void AtomicFileWriter::Discard() {
  if (!fd_.valid()) return;
  fd_.reset();
  ::unlink(temp_path_.c_str());
}

Status AtomicFileWriter::Open(const std::string& path) {
  Discard();
  path_ = path;
  error_.clear();
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Fail("cannot create directory " + parent.string() + ": " + ec.message());
  // The temporary name is hidden and unique, so a reader listing the directory never mistakes
  // a half-written file for a record.
  std::string name = std::filesystem::path(path).filename().string();
  temp_path_ = (parent / ("." + name + ".tmp.XXXXXX")).string();
  fd_.reset(::mkostemp(temp_path_.data(), O_CLOEXEC));
  if (!fd_.valid()) return Fail(ErrnoMessage("cannot create", temp_path_));
  ::fchmod(fd_.get(), 0644);
  return {};
}

void AtomicFileWriter::Append(std::string_view data) {
  if (!fd_.valid() || !error_.empty()) return;
  if (Status written = WriteAll(fd_.get(), data); !written) {
    error_ = "cannot write " + path_ + ": " + written.error();
  }
}

Status AtomicFileWriter::Commit(bool sync, bool sync_directory) {
  if (!fd_.valid()) return Fail("cannot write " + path_ + ": not open");
  if (error_.empty() && sync && ::fsync(fd_.get()) != 0) {
    error_ = ErrnoMessage("cannot sync", path_);
  }
  if (!error_.empty()) {
    std::string error = error_;
    Discard();
    return Fail(error);
  }
  fd_.reset();
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::string error = ErrnoMessage("cannot rename into", path_);
    ::unlink(temp_path_.c_str());
    return Fail(error);
  }
  if (sync_directory) {
    std::string parent = std::filesystem::path(path_).parent_path().string();
    UniqueFd dir(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    // The file is in place already; a directory that cannot be synced only weakens durability.
    if (dir.valid()) ::fsync(dir.get());
  }
  return {};
}

Status WriteFileAtomic(const std::string& path, std::string_view contents, bool sync,
                       bool sync_directory) {
  AtomicFileWriter writer;
  if (auto opened = writer.Open(path); !opened) return opened;
  writer.Append(contents);
  return writer.Commit(sync, sync_directory);
}

}  // namespace runner
