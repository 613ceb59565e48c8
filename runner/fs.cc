#include "runner/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace runner {

std::string ErrnoText(int err) {
  // strerror may share one buffer between threads; the GNU strerror_r returns its own text.
  char buffer[256];
  return ::strerror_r(err, buffer, sizeof buffer);
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrnoText(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<UniqueFd> LockFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Fail("cannot open " + path + ": " + ErrnoText(errno));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Fail("cannot lock " + path + ": " + ErrnoText(errno));
  }
  return fd;
}

Result<std::string> ReadFile(const std::string& path) {
  return ReadFileAtMost(path, std::string().max_size());
}

Result<std::string> ReadAll(int fd, size_t limit, size_t expected) {
  constexpr size_t kStep = 65536;
  std::string contents;
  size_t done = 0;
  while (done < limit) {
    // One byte past what is expected, so that its end is seen without growing the string.
    if (done == contents.size()) {
      contents.resize(std::min(limit, std::max(done + kStep, expected + 1)));
    }
    ssize_t n = ::read(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrnoText(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  contents.resize(done);
  return contents;
}

Result<std::string> ReadFileAtMost(const std::string& path, size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Fail("cannot read " + path + ": " + ErrnoText(errno));
  auto contents = ReadAll(fd.get(), limit);
  if (!contents) return Fail("cannot read " + path + ": " + contents.error());
  return contents;
}

}  // namespace runner
