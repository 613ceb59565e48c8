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
  std::string contents;
  while (contents.size() < limit) {
    // Room for one byte past what is expected, so that its end is seen without growing the
    // string; else a page at first, then twice what was read. Never zero-filled first:
    // resize_and_overwrite, not resize (64 KiB cleared per file read made it half of a
    // no-op build's instructions).
    const size_t done = contents.size();
    const size_t room =
        std::min(limit, std::max(expected + 1, done == 0 ? size_t{4096} : 2 * done));
    ssize_t n = 0;
    contents.resize_and_overwrite(room, [&](char* data, size_t) {
      n = ::read(fd, data + done, room - done);
      return done + static_cast<size_t>(std::max<ssize_t>(n, 0));
    });
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrnoText(errno));
    if (n == 0) break;
  }
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
