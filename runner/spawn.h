// Finding and starting child programs, shared by the process runner and the steps that run a
// tool themselves (packer).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "runner/result.h"

namespace runner {

// The path to exec for `name`: `name` itself when it holds a '/', else the first executable
// match on `path_var` (the child's PATH, not ours; unset: "/bin:/usr/bin", as execvp). A
// relative result is relative to `cwd`, where the child starts. Fails saying what was searched.
Result<std::string> FindProgram(const std::string& name, const std::optional<std::string>& path_var,
                                const std::string& cwd);

struct SpawnRequest {
  std::string program;            // a path, as FindProgram returns
  std::vector<std::string> argv;  // argv[0] as the child sees it
  std::vector<std::string> env;   // KEY=VALUE
  std::string cwd;                // empty: the caller's
  bool new_process_group = false;
  int stdin_fd = -1;   // -1: /dev/null
  int stdout_fd = -1;  // duplicated onto the child's 1 and 2
  int stderr_fd = -1;
};

// Starts a child with stdin from /dev/null (or stdin_fd), stdout and stderr on the given
// descriptors, every signal at its default disposition and none blocked: a runner started in the
// background inherits SIGINT ignored, and an ignored signal survives exec. Returns its pid.
// The child is cloned with the caller's memory (CLONE_VM | CLONE_VFORK, as posix_spawn does) on
// a stack kept for all spawns, so the caller waits only until it has exec'd.
Result<pid_t> Spawn(const SpawnRequest& request);

}  // namespace runner
