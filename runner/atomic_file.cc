#include "runner/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace runner {

namespace {

std::string ErrnoMessage(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

}  // namespace

AtomicFileWriter::~AtomicFileWriter() { Discard(); }

void AtomicFileWriter::Discard() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
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
  fd_ = ::mkostemp(temp_path_.data(), O_CLOEXEC);
  if (fd_ < 0) return Fail(ErrnoMessage("cannot create", temp_path_));
  ::fchmod(fd_, 0644);
  return {};
}

void AtomicFileWriter::Append(std::string_view data) {
  if (fd_ < 0 || !error_.empty()) return;
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = ErrnoMessage("cannot write", path_);
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

Status AtomicFileWriter::Commit(bool sync) {
  if (fd_ < 0) return Fail("cannot write " + path_ + ": not open");
  if (error_.empty() && sync && ::fsync(fd_) != 0) error_ = ErrnoMessage("cannot sync", path_);
  if (!error_.empty()) {
    std::string error = error_;
    Discard();
    return Fail(error);
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::string error = ErrnoMessage("cannot rename into", path_);
    ::unlink(temp_path_.c_str());
    return Fail(error);
  }
  return {};
}

Status WriteFileAtomic(const std::string& path, std::string_view contents, bool sync) {
  AtomicFileWriter writer;
  if (auto opened = writer.Open(path); !opened) return opened;
  writer.Append(contents);
  return writer.Commit(sync);
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(ErrnoMessage("cannot read", path));
  std::string contents;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string error = ErrnoMessage("cannot read", path);
      ::close(fd);
      return Fail(error);
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return contents;
}

}  // namespace runner
