// File descriptors and whole-file reads with errors as values.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "runner/result.h"

namespace runner {

// The text of an errno value ("No such file or directory"). Thread-safe.
std::string ErrnoText(int err);

// Owns a file descriptor and closes it on destruction; -1 owns nothing. Movable, not copyable.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes the owned descriptor (if any) and owns `fd` instead.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes all of `data` to `fd`, retrying short writes and EINTR. The error is ErrnoText of the
// failure alone: the caller names the file.
Status WriteAll(int fd, std::string_view data);

// Opens `path` (created when missing, mode 0644) and takes an exclusive flock on it, waiting
// for it: held until the descriptor is closed. Errors name the file.
Result<UniqueFd> LockFile(const std::string& path);

// Reads `fd` to its end, or `limit` bytes if it has more, straight into the result;
// `expected`, when known (a regular file's size), sizes it at once. The error is ErrnoText of
// the failure alone: the caller names the file.
Result<std::string> ReadAll(int fd, size_t limit, size_t expected = 0);

// Reads a whole file. Errors read "cannot read PATH: REASON".
Result<std::string> ReadFile(const std::string& path);

// Reads at most `limit` bytes of a file, so that /dev/zero, a pipe or a terminal cannot make it
// read for ever: a result of exactly `limit` bytes may be cut short (read limit + 1 to tell a
// file that is too large). Errors as ReadFile.
Result<std::string> ReadFileAtMost(const std::string& path, size_t limit);

}  // namespace runner
