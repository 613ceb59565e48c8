#include "runner/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "runner/fs.h"

namespace runner {

namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// `path` as the child sees it after chdir(cwd), for checking from here.
std::string FromChild(const std::string& path, const std::string& cwd) {
  if (cwd.empty() || path.starts_with('/')) return path;
  return cwd + "/" + path;
}

}  // namespace

Result<std::string> FindProgram(const std::string& name, const std::optional<std::string>& path_var,
                                const std::string& cwd) {
  if (name.empty()) return Fail("cannot start a process: the program name is empty");
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(FromChild(name, cwd))) return name;
    return Fail("cannot run '" + name + "': not an executable file" +
                (cwd.empty() ? std::string() : " (relative to '" + cwd + "')"));
  }
  std::string search = path_var.value_or("/bin:/usr/bin");
  size_t begin = 0;
  while (true) {
    size_t end = search.find(':', begin);
    std::string dir = search.substr(begin, end == std::string::npos ? end : end - begin);
    // An empty PATH entry means the current directory.
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (IsExecutableFile(FromChild(candidate, cwd))) return candidate;
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return Fail("cannot run '" + name + "': not found on PATH (" +
              (path_var ? "PATH=" + *path_var : std::string("PATH is not set")) + ")");
}

Result<pid_t> Spawn(const SpawnRequest& request) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  int err = 0;
  auto check = [&err](int rc) {
    if (err == 0) err = rc;
  };
  if (!request.cwd.empty()) {
    check(posix_spawn_file_actions_addchdir_np(&actions, request.cwd.c_str()));
  }
  if (request.stdin_fd >= 0) {
    check(posix_spawn_file_actions_adddup2(&actions, request.stdin_fd, 0));
  } else {
    check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0));
  }
  // dup2 clears close-on-exec on the targets only; the originals stay close-on-exec.
  check(posix_spawn_file_actions_adddup2(&actions, request.stdout_fd, 1));
  check(posix_spawn_file_actions_adddup2(&actions, request.stderr_fd, 2));
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  if (request.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    check(posix_spawnattr_setpgroup(&attr, 0));
  }
  check(posix_spawnattr_setflags(&attr, flags));
  check(posix_spawnattr_setsigdefault(&attr, &all));
  check(posix_spawnattr_setsigmask(&attr, &none));

  std::vector<char*> argv;
  for (const auto& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : request.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  if (err == 0) {
    err = posix_spawn(&pid, request.program.c_str(), &actions, &attr, argv.data(), envp.data());
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return Fail("cannot run '" + request.argv[0] + "' (" + request.program +
                "): " + ErrnoText(err));
  }
  return pid;
}

}  // namespace runner
