#include "runner/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

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

namespace {

// What the cloned child reads, all made before the clone: it runs in our memory, on our stack
// kept for it, while we wait, and must not allocate.
struct Child {
  const SpawnRequest* request;
  char* const* argv;
  char* const* envp;
  int error = 0;  // why it could not exec, set by the child
};

constexpr size_t kChildStack = 64 * 1024;

// In the child: `fd` onto `target`, which is not closed on exec either way.
bool Onto(int fd, int target) {
  if (fd == target) return fcntl(target, F_SETFD, 0) == 0;
  return dup2(fd, target) == target;
}

// In the child: its process group, standard descriptors and directory, as `request` says.
bool SetUpChild(const SpawnRequest& request) {
  if (request.new_process_group && setpgid(0, 0) != 0) return false;
  if (request.stdin_fd >= 0) {
    if (!Onto(request.stdin_fd, STDIN_FILENO)) return false;
  } else {
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0) return false;
    if (null_fd != STDIN_FILENO && (dup2(null_fd, STDIN_FILENO) != 0 || close(null_fd) != 0)) {
      return false;
    }
  }
  return Onto(request.stdout_fd, STDOUT_FILENO) && Onto(request.stderr_fd, STDERR_FILENO) &&
         (request.cwd.empty() || chdir(request.cwd.c_str()) == 0);
}

int RunChild(void* arg) {
  Child& child = *static_cast<Child*>(arg);
  // A handler of ours would run here, in our memory; an ignored signal would survive exec.
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &fallback, nullptr);
  if (SetUpChild(*child.request)) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(child.request->program.c_str(), child.argv, child.envp);
  }
  child.error = errno;
  _exit(127);
}

}  // namespace

Result<pid_t> Spawn(const SpawnRequest& request) {
  std::vector<char*> argv;
  for (const auto& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : request.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  Child child{.request = &request, .argv = argv.data(), .envp = envp.data()};

  // One stack for every child (posix_spawn maps and unmaps one per call); one child at a time.
  static std::mutex mutex;
  static std::unique_ptr<char[]> stack;
  std::lock_guard lock(mutex);
  if (!stack) stack = std::make_unique<char[]>(kChildStack);
  // Blocked until the child has reset the handlers, so that none of ours runs in it.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = clone(RunChild, stack.get() + kChildStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  int error = pid < 0 ? clone_errno : child.error;
  if (pid > 0 && error != 0) waitpid(pid, nullptr, 0);
  if (error != 0) {
    return Fail("cannot run '" + request.argv[0] + "' (" + request.program +
                "): " + ErrnoText(error));
  }
  return pid;
}

}  // namespace runner
