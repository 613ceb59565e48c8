#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <unordered_map>

#include "runner/fs.h"
#include "runner/process.h"
#include "runner/spawn.h"

// Signal handlers only write the signal number to a self-pipe, so Wait can poll the output pipes
// and the signals together, and all real work happens outside the handlers. Reaping is by
// waitpid(-1): as a subreaper the runner also inherits the orphans of steps, whose pids it never
// learned. The flip side: the rest of the runner must not wait for children of its own (system(),
// popen()); their statuses would be taken here. Not thread-safe: one thread drives the runner.

namespace runner {
namespace {

using Clock = std::chrono::steady_clock;

// The handler's only state: where to write. A plain int read by the handler, written only
// while the handlers are not installed.
volatile sig_atomic_t g_signal_pipe = -1;
// The first SIGINT, SIGTERM or SIGHUP, for received_signal().
volatile sig_atomic_t g_received_signal = 0;
bool g_instance_exists = false;

constexpr int kHandledSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
// Signals that end a build; blocked while a process joins our group (SpawnInOurGroup).
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
// A step that closes its pipe early, or a write beyond RLIMIT_FSIZE, must fail with EPIPE or
// EFBIG rather than kill the runner; children get both back at their default (Spawn).
constexpr int kIgnoredSignals[] = {SIGPIPE, SIGXFSZ};
// Bytes taken from one process's pipe per round, so that a fast writer cannot starve the others
// or hold Wait past its deadline.
constexpr size_t kMaxReadPerRound = 256 * 1024;
constexpr size_t kMaxFinalRead = 4 * 1024 * 1024;
// While a leader has exited and its group lingers, the last member may die as the child of a
// process other than us (so no SIGCHLD reaches us): look again at this interval.
constexpr auto kGroupRecheck = std::chrono::milliseconds(100);

void OnSignal(int sig) {
  int saved_errno = errno;
  if (sig != SIGCHLD && g_received_signal == 0) g_received_signal = sig;
  unsigned char byte = static_cast<unsigned char>(sig);
  // Non-blocking: if the pipe is full, Wait has plenty to read already.
  ssize_t ignored = write(g_signal_pipe, &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// A process that may have left its group: found by the token in its kProcessCookieVar.
struct Carrier {
  pid_t pid = 0;
  pid_t pgid = 0;
  unsigned long long start_time = 0;  // tells it from a later process with the same pid
};

constexpr unsigned kPfExiting = 0x4;         // include/linux/sched.h
constexpr unsigned kPfKthread = 0x00200000;  // include/linux/sched.h
// While a process execs, and once it is exiting, its environment reads empty: look again for
// the first, in case it is one of ours (exec takes microseconds).
constexpr int kExecRetries = 50;

// From /proc/PID/stat: "PID (COMM) STATE PPID PGRP SESSION TTY TPGID FLAGS ... STARTTIME(22)".
// COMM may hold anything, so the fields are parsed after its last ')'. nullopt: no such process
// or a zombie.
struct ProcStat {
  pid_t ppid = 0;
  pid_t pgid = 0;
  unsigned flags = 0;
  unsigned long long start_time = 0;
};

// Splits /proc/PID/stat after COMM's last ')' into `fields` (fields[0] is field 3, the state);
// returns how many were found, at most fields.size().
size_t StatFields(std::string_view stat, std::span<std::string_view> fields) {
  size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return 0;
  std::string_view rest = stat.substr(paren + 1);
  size_t count = 0;
  for (size_t i = 0; i < rest.size() && count < fields.size();) {
    if (rest[i] == ' ') {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < rest.size() && rest[i] != ' ') ++i;
    fields[count++] = rest.substr(start, i - start);
  }
  return count;
}

// Reads DIR/stat into `buffer` and splits it as StatFields does.
size_t ReadStatFields(const std::string& dir, std::span<char> buffer,
                      std::span<std::string_view> fields) {
  UniqueFd fd(open((dir + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
  ssize_t size = fd.valid() ? read(fd.get(), buffer.data(), buffer.size()) : -1;
  return StatFields(std::string_view(buffer.data(), size > 0 ? static_cast<size_t>(size) : 0),
                    fields);
}

// Field `field` (numbered as in proc(5)) of what StatFields split, as a number.
template <typename T>
bool StatNumber(std::span<const std::string_view> fields, size_t field, T& out) {
  std::string_view text = fields[field - 3];
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

std::optional<ProcStat> ReadProcStat(const std::string& dir) {
  // Read and parsed by hand, without allocating: this runs once per process on the machine for
  // every step that ends, and sscanf made it the runner's costliest function.
  char buffer[4096];
  std::array<std::string_view, 20> fields;  // from the state, field 3
  size_t count = ReadStatFields(dir, buffer, fields);
  ProcStat result;
  if (count < fields.size() || fields[0] == "Z" || !StatNumber(fields, 4, result.ppid) ||
      !StatNumber(fields, 5, result.pgid) || !StatNumber(fields, 9, result.flags) ||
      !StatNumber(fields, 22, result.start_time)) {
    return std::nullopt;
  }
  return result;
}

// Whether `carrier` still runs (the same process, not a zombie).
bool StillRuns(const Carrier& carrier) {
  auto stat = ReadProcStat("/proc/" + std::to_string(carrier.pid));
  return stat && stat->start_time == carrier.start_time;
}

// Which processes a scan reads the environment of: reading every process's costs a step's
// run time many times over on a busy machine. The runner is a child subreaper, so whatever a
// step leaves running stays its descendant (reparented to it at worst): its own scans look at
// its descendants only, and a process whose parent vanished during the scan counts as one.
struct ScanScope {
  pid_t root = 0;  // only this process's descendants; 0: every process
  Carrier skip;    // a process known to carry no token
};

// Every process (but this one) in `scope` whose environment we may read and whose cookie holds
// a token for which `matches` is true. Its environment is the one it was exec'd with: a
// process that rewrites its own, or runs as another user, is not found.
template <typename Matches>
std::vector<Carrier> FindCarriers(const Matches& matches, const ScanScope& scope = {}) {
  std::vector<Carrier> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  pid_t self = getpid();
  std::vector<std::pair<pid_t, ProcStat>> processes;
  std::unordered_map<pid_t, pid_t> parent_of;
  while (struct dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::optional<ProcStat> stat = ReadProcStat(std::string("/proc/") + entry->d_name);
    if (!stat) continue;
    parent_of.emplace(static_cast<pid_t>(pid), stat->ppid);
    if (pid == self || (stat->flags & kPfKthread) != 0) continue;
    processes.emplace_back(static_cast<pid_t>(pid), *stat);
  }
  closedir(proc);
  auto in_scope = [&](pid_t pid) {
    if (scope.root == 0) return true;
    // Bounded: reads racing with exits and pid reuse could make a loop of parents.
    for (size_t depth = 0; depth <= parent_of.size(); ++depth) {
      auto parent = parent_of.find(pid);
      if (parent == parent_of.end()) return true;
      pid = parent->second;
      if (pid == scope.root) return true;
      if (pid <= 0) return false;
    }
    return true;
  };
  std::string prefix = std::string(kProcessCookieVar) + "=";
  for (auto& [pid, stat_value] : processes) {
    if (!in_scope(pid)) continue;
    if (pid == scope.skip.pid && stat_value.start_time == scope.skip.start_time) continue;
    std::string dir = "/proc/" + std::to_string(pid);
    std::optional<ProcStat> stat = stat_value;
    Result<std::string> environ = ReadFile(dir + "/environ");
    for (int retry = 0;
         retry < kExecRetries && environ && environ->empty() && (stat->flags & kPfExiting) == 0;
         ++retry) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      stat = ReadProcStat(dir);
      if (!stat) break;
      environ = ReadFile(dir + "/environ");
    }
    if (!stat || !environ) continue;
    size_t at = environ->starts_with(prefix) ? 0 : environ->find(std::string(1, '\0') + prefix);
    if (at == std::string::npos) continue;
    at += at == 0 ? prefix.size() : prefix.size() + 1;
    std::string_view cookie(environ->data() + at, std::strlen(environ->data() + at));
    bool carries = false;
    while (!cookie.empty() && !carries) {
      size_t space = cookie.find(' ');
      carries = matches(cookie.substr(0, space));
      cookie.remove_prefix(space == std::string_view::npos ? cookie.size() : space + 1);
    }
    if (carries) found.push_back({pid, stat->pgid, stat->start_time});
  }
  return found;
}

// The runner's watchdog, whose environment is blanked (BlankEnvironment): no scan need read it.
// Set while the PosixProcessRunner exists.
Carrier g_watchdog;

std::vector<Carrier> CarriersOf(const std::string& token) {
  return FindCarriers([&token](std::string_view t) { return t == token; },
                      ScanScope{getpid(), g_watchdog});
}

// 16 hex digits, unique among the runners of a machine for all practical purposes.
std::string NewCookie() {
  std::random_device random;
  char text[17];
  std::snprintf(text, sizeof text, "%08x%08x", random(), random());
  return text;
}

struct Process {
  pid_t pid = 0;          // also the process group id, with own_group
  bool own_group = true;  // false: in the runner's group (ProcessSpec::own_process_group)
  std::string cookie;     // its token in kProcessCookieVar
  // Carriers signalled: once exiting, a process shows no environment, yet it still runs.
  std::vector<Carrier> carriers;
  // stdout (or both), stderr when separate; -1 once closed.
  int fds[2] = {-1, -1};
  std::chrono::milliseconds kill_grace{0};
  bool leader_exited = false;
  int exit_code = 0;
  bool group_gone = false;        // without own_group: nothing left to wait for
  bool termed_leftovers = false;  // SIGTERM sent to what the leader left running
  bool killed = false;            // SIGKILL sent: sent again to what appears after
  bool left_running = false;
  std::optional<Clock::time_point> kill_at;
  // Without own_group: when to stop waiting for what the leader left running.
  std::optional<Clock::time_point> leftovers_until;
};

// The process group and the carriers of its cookie that left the group, for an own_group
// process; the process alone, while it is not reaped (its pid could be reused after), for one in
// the runner's group.
void Signal(Process& p, int sig) {
  if (p.own_group) {
    kill(-p.pid, sig);
    for (const Carrier& carrier : CarriersOf(p.cookie)) {
      if (carrier.pgid == p.pid) continue;
      kill(carrier.pid, sig);
      if (std::ranges::find(p.carriers, carrier.pid, &Carrier::pid) == p.carriers.end()) {
        p.carriers.push_back(carrier);
      }
    }
  } else if (!p.leader_exited) {
    kill(p.pid, sig);
  }
}

// Whether an own_group process's group is empty and no process carries its cookie. Once the
// group is empty, a process that left it and still runs has a topmost living ancestor below
// the runner that is a child the runner adopted (as subreaper): without `adopted_child`, no
// process needs to be looked at.
bool AllGone(const Process& p, bool adopted_child) {
  return kill(-p.pid, 0) != 0 && errno == ESRCH &&
         (!adopted_child || CarriersOf(p.cookie).empty()) &&
         std::ranges::none_of(p.carriers, StillRuns);
}

// Whether the runner has a child in process group `pgid`; WNOWAIT leaves any status to Reap.
bool HasChildIn(pid_t pgid) {
  siginfo_t info{};
  return waitid(P_PGID, static_cast<id_t>(pgid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// A PATH whose every entry is an absolute directory (an empty entry is the current one).
bool IsAbsoluteSearch(std::string_view path) {
  for (size_t begin = 0;;) {
    size_t end = path.find(':', begin);
    if (begin >= path.size() || path[begin] != '/') return false;
    if (end == std::string_view::npos) return true;
    begin = end + 1;
  }
}

// The watchdog's body: waits until standard input reaches end of file (the runner holding the
// pipe's other end has exited, however it ended), then sends SIGTERM to every process whose
// kProcessCookieVar holds a token of the runner `cookie` names and, those left after the
// longest kill grace of what the runner started (it writes each longer one to the pipe as a
// line of milliseconds; at least 2 s), SIGKILL. Sees only the processes whose environment it may
// read (all, as root; the same user's, else). Returns the exit code.
int RunWatchdog(std::string_view cookie) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  for (int sig : kStopSignals) sigaction(sig, &ignore, nullptr);
  // The runner writes the longest kill grace of what it started, one decimal number of
  // milliseconds a line; at least a short one: whoever SIGKILLed the runner wants the build
  // gone, yet a step's trap may still tidy up.
  std::chrono::milliseconds grace = std::chrono::seconds(2);
  std::string line;
  char buffer[256];
  while (true) {
    ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] != '\n') {
        if (line.size() < 32) line += buffer[i];
        continue;
      }
      long long ms = 0;
      auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), ms);
      if (error == std::errc() && end == line.data() + line.size() && ms > grace.count()) {
        grace = std::chrono::milliseconds(ms);
      }
      line.clear();
    }
  }
  std::string prefix = std::string(cookie) + ".";
  auto ours = [&prefix](std::string_view token) { return token.starts_with(prefix); };
  // Polled: the carriers are no children of ours, so no wait() tells of them.
  const auto kGrace = grace;
  const auto kGiveUp = grace + std::chrono::seconds(10);  // one stuck in the kernel stays stuck
  constexpr auto kPoll = std::chrono::milliseconds(50);
  auto start = Clock::now();
  std::vector<Carrier> found = FindCarriers(ours);
  for (const Carrier& carrier : found) kill(carrier.pid, SIGTERM);
  while (!found.empty() && Clock::now() < start + kGiveUp) {
    std::this_thread::sleep_for(kPoll);
    found = FindCarriers(ours);
    if (Clock::now() < start + kGrace) continue;
    for (const Carrier& carrier : found) kill(carrier.pid, SIGKILL);
  }
  return 0;
}

// What /proc/PID/environ shows of this process (the environment it was exec'd with, which a
// fork keeps) is overwritten with NULs: the runner's environment may carry an outer runner's
// tokens (a runner run by a step), and its watchdog is no process of that step.
void BlankEnvironment() {
  char buffer[4096];
  std::array<std::string_view, 49> fields;  // fields 3 to 51
  uintptr_t start = 0;
  uintptr_t end = 0;
  if (ReadStatFields("/proc/self", buffer, fields) == fields.size() &&
      StatNumber(fields, 50, start) && StatNumber(fields, 51, end) && start != 0 && end > start) {
    std::memset(reinterpret_cast<void*>(start), 0, end - start);
  }
}

// The forked child's side of StartWatchdog; never returns. Every signal is blocked (by the
// parent, across the fork) until the handlers it inherited are reset.
[[noreturn]] void BecomeWatchdog(int pipe_read, std::string_view cookie) {
  setpgid(0, 0);
  // Above 2 first, so that no dup2 below overwrites the other.
  int in = fcntl(pipe_read, F_DUPFD_CLOEXEC, 3);
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  int out = null_fd < 0 ? -1 : fcntl(null_fd, F_DUPFD_CLOEXEC, 3);
  if (in < 0 || out < 0) _exit(1);
  dup2(in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  // Nothing of the runner's stays open here: above all not the write end of that pipe (or of a
  // step's output pipe), which would never see end of file.
  close_range(3, ~0U, 0);
  if (chdir("/") != 0) _exit(1);
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  for (int sig : kHandledSignals) sigaction(sig, &fallback, nullptr);
  BlankEnvironment();
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  _exit(RunWatchdog(cookie));
}

class PosixProcessRunner : public ProcessRunner {
 public:
  explicit PosixProcessRunner(bool with_watchdog);
  ~PosixProcessRunner() override;

  Result<int> Start(ProcessSpec spec) override;
  void Terminate(int id, int sig) override;
  void Interrupt(int id, int sig) override;
  void Kill(int id) override;
  std::vector<ProcessEvent> Wait(Clock::time_point deadline) override;
  void Wake() override;
  int running() const override { return static_cast<int>(processes_.size()); }
  int received_signal() const override { return g_received_signal; }

 private:
  // Sets *woken when Wake wrote to the pipe.
  void ReadSignalPipe(std::vector<ProcessEvent>* events, bool* child_exited, bool* woken);
  void Reap();
  void CheckGroups(Clock::time_point now);
  // Whether the runner has a child it did not start (an orphan it adopted as subreaper); true
  // when the kernel does not list children (/proc/PID/task/TID/children).
  bool HasAdoptedChild();
  // Reads what is available; closes the pipe at end of file or when `final` (the group is gone,
  // so whoever still holds the write end escaped it).
  void ReadOutput(int id, Process* p, bool final, std::vector<ProcessEvent>* events);
  Result<pid_t> SpawnInOurGroup(const SpawnRequest& request);
  Result<std::string> ResolveProgram(const ProcessSpec& spec);
  void ArmKill(Process* p, Clock::time_point now);
  void StartWatchdog();
  void TellWatchdogGrace(std::chrono::milliseconds grace);

  int signal_pipe_[2] = {-1, -1};
  struct sigaction old_actions_[std::size(kHandledSignals)];
  struct sigaction old_ignored_[std::size(kIgnoredSignals)];
  sigset_t old_mask_;
  int old_subreaper_ = 0;
  int next_id_ = 1;
  std::map<int, Process> processes_;
  std::string cookie_ = NewCookie();  // the tokens of its processes are "COOKIE.ID"
  int watchdog_pipe_ = -1;            // write end; the watchdog sees EOF once we are gone
  UniqueFd children_;                 // the main thread's /proc children list, read anew from 0
  std::chrono::milliseconds watchdog_grace_{0};  // the longest grace told to the watchdog
  // NAME\0PATH -> the path found, for a program started by name through an absolute PATH.
  std::map<std::string, std::string, std::less<>> found_programs_;
};

PosixProcessRunner::PosixProcessRunner(bool with_watchdog) {
  if (g_instance_exists) {
    std::fprintf(stderr, "runner: internal error: a second PosixProcessRunner was created\n");
    std::abort();
  }
  g_instance_exists = true;
  if (pipe2(signal_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    std::fprintf(stderr, "runner: cannot create a pipe: %s\n", ErrnoText(errno).c_str());
    std::abort();
  }
  g_signal_pipe = signal_pipe_[1];
  g_received_signal = 0;

  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART so that blocking calls elsewhere in the runner are not cut short.
  action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  for (size_t i = 0; i < std::size(kHandledSignals); ++i) {
    sigaction(kHandledSignals[i], &action, &old_actions_[i]);
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  for (size_t i = 0; i < std::size(kIgnoredSignals); ++i) {
    sigaction(kIgnoredSignals[i], &ignore, &old_ignored_[i]);
  }
  // Inherited blocked signals would leave Wait deaf to exits and interrupts.
  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : kHandledSignals) sigaddset(&unblock, sig);
  pthread_sigmask(SIG_UNBLOCK, &unblock, &old_mask_);

  prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper_);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (with_watchdog) StartWatchdog();
}

// The watchdog holds the read end of a pipe whose write end only we hold (close-on-exec, so no
// child inherits it): the kernel closes it however we end, SIGKILL included. Its own process
// group keeps it out of the signals a terminal or a CI agent sends to ours. It is a fork of this
// process, not a program started anew: exec'ing the runner again cost 4 to 5 ms of CPU per
// build, its libraries mapped and relocated once more.
void PosixProcessRunner::StartWatchdog() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "runner: warning: cannot start the watchdog: %s\n",
                 ErrnoText(errno).c_str());
    return;
  }
  // A signal the child took before it reset the handlers would be reported through our pipe.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid_t pid = fork();
  if (pid == 0) BecomeWatchdog(fds[0], cookie_);
  int fork_errno = errno;
  if (pid > 0) setpgid(pid, pid);  // the child does too: whichever runs first
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  close(fds[0]);
  if (pid < 0) {
    std::fprintf(stderr,
                 "runner: warning: cannot start the watchdog: %s; a step's processes may "
                 "outlive a SIGKILL of the runner\n",
                 ErrnoText(fork_errno).c_str());
    close(fds[1]);
    return;
  }
  watchdog_pipe_ = fds[1];
  if (auto stat = ReadProcStat("/proc/" + std::to_string(pid))) {
    g_watchdog = {pid, stat->pgid, stat->start_time};
  }
}

PosixProcessRunner::~PosixProcessRunner() {
  for (auto& [id, p] : processes_) {
    if (!p.group_gone) Signal(p, SIGKILL);
  }
  // SIGKILL is not instant: reap until every group is gone. Bounded, because a process stuck
  // in the kernel (uninterruptible sleep) cannot be helped by waiting longer.
  auto give_up = Clock::now() + std::chrono::seconds(5);
  while (true) {
    Reap();
    bool all_gone = true;
    for (auto& [id, p] : processes_) {
      // What a process in our group left running is that group's owner's to stop.
      if (!p.group_gone && (p.own_group ? AllGone(p, true) : p.leader_exited)) {
        p.group_gone = true;
      }
      all_gone = all_gone && p.group_gone;
    }
    if (all_gone || Clock::now() >= give_up) break;
    char buffer[64];
    while (read(signal_pipe_[0], buffer, sizeof buffer) > 0) {
    }
    struct pollfd pfd = {signal_pipe_[0], POLLIN, 0};
    poll(&pfd, 1, 10);
  }
  for (auto& [id, p] : processes_) {
    for (int fd : p.fds) {
      if (fd >= 0) close(fd);
    }
  }

  prctl(PR_SET_CHILD_SUBREAPER, old_subreaper_);
  for (size_t i = 0; i < std::size(kHandledSignals); ++i) {
    sigaction(kHandledSignals[i], &old_actions_[i], nullptr);
  }
  for (size_t i = 0; i < std::size(kIgnoredSignals); ++i) {
    sigaction(kIgnoredSignals[i], &old_ignored_[i], nullptr);
  }
  // Nothing of ours is left for the watchdog to stop: let it go.
  if (watchdog_pipe_ >= 0) close(watchdog_pipe_);
  g_watchdog = {};
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  g_signal_pipe = -1;
  close(signal_pipe_[0]);
  close(signal_pipe_[1]);
  g_instance_exists = false;
  // A caller that had a handler (a "cancelled" flag), or the signal blocked for a signalfd,
  // must still learn of the signal; at the default disposition it would end the process.
  for (size_t i = 0; i < std::size(kHandledSignals); ++i) {
    int sig = kHandledSignals[i];
    if (sig != g_received_signal) continue;
    const struct sigaction& old = old_actions_[i];
    bool is_function =
        (old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
    bool was_blocked = sigismember(&old_mask_, sig) == 1;
    if (is_function || (was_blocked && old.sa_handler != SIG_IGN)) raise(sig);
  }
}

Result<int> PosixProcessRunner::Start(ProcessSpec spec) {
  if (spec.argv.empty()) return Fail("cannot start a process: no command given");
  // Checked here so that the message names the path; the child's chdir would only say ENOENT.
  if (!spec.cwd.empty()) {
    struct stat st;
    if (stat(spec.cwd.c_str(), &st) != 0) {
      return Fail("cannot run '" + spec.argv[0] + "': working directory '" + spec.cwd +
                  "': " + ErrnoText(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return Fail("cannot run '" + spec.argv[0] + "': working directory '" + spec.cwd +
                  "' is not a directory");
    }
  }
  Result<std::string> program = ResolveProgram(spec);
  if (!program) return Fail(program.error());

  // [stream][end]: stdout, and stderr when separate.
  int pipes[2][2] = {{-1, -1}, {-1, -1}};
  auto close_all = [&pipes] {
    for (auto& pair : pipes) {
      for (int fd : pair) {
        if (fd >= 0) close(fd);
      }
    }
  };
  for (int stream = 0; stream < (spec.separate_stderr ? 2 : 1); ++stream) {
    if (pipe2(pipes[stream], O_CLOEXEC) != 0) {
      int saved = errno;
      close_all();
      return Fail("cannot create a pipe: " + ErrnoText(saved));
    }
    fcntl(pipes[stream][0], F_SETFL, O_NONBLOCK);  // a new pipe's end has no other status flag
  }
  int id = next_id_++;
  std::string cookie = cookie_ + "." + std::to_string(id);
  std::vector<std::string> env = std::move(spec.env);
  std::string var = std::string(kProcessCookieVar) + "=";
  auto inherited = std::ranges::find_if(
      env, [&var](const std::string& entry) { return entry.starts_with(var); });
  if (inherited == env.end()) {
    env.push_back(var + cookie);
  } else {
    *inherited += (inherited->size() == var.size() ? "" : " ") + cookie;
  }
  SpawnRequest request = {.program = std::move(*program),
                          .argv = std::move(spec.argv),
                          .env = std::move(env),
                          .cwd = std::move(spec.cwd),
                          .new_process_group = spec.own_process_group,
                          .stdout_fd = pipes[0][1],
                          .stderr_fd = spec.separate_stderr ? pipes[1][1] : pipes[0][1]};
  Result<pid_t> pid = spec.own_process_group ? Spawn(request) : SpawnInOurGroup(request);
  for (auto& pair : pipes) {
    if (pair[1] >= 0) close(pair[1]);
    pair[1] = -1;
  }
  if (!pid) {
    close_all();
    return Fail(pid.error());
  }

  Process& p = processes_[id];
  p.pid = *pid;
  p.own_group = spec.own_process_group;
  p.cookie = std::move(cookie);
  p.fds[0] = pipes[0][0];
  p.fds[1] = pipes[1][0];
  p.kill_grace = spec.kill_grace;
  TellWatchdogGrace(spec.kill_grace);
  return id;
}

// Every shell step starts `bash` by name: the PATH search, a stat per entry, is made once per
// PATH. Only argv[0] is resolved here (what a script runs, bash finds), so a tool a step
// installs is still found by the steps after it; a PATH with a relative entry depends on the
// directory and is searched every time.
Result<std::string> PosixProcessRunner::ResolveProgram(const ProcessSpec& spec) {
  const std::string& name = spec.argv[0];
  std::optional<std::string> path_var;
  for (const auto& entry : spec.env) {
    if (entry.starts_with("PATH=")) {
      path_var = entry.substr(5);
      break;
    }
  }
  if (name.find('/') != std::string::npos || !path_var || !IsAbsoluteSearch(*path_var)) {
    return FindProgram(name, path_var, spec.cwd);
  }
  std::string key = name + '\0' + *path_var;
  if (auto found = found_programs_.find(key); found != found_programs_.end()) {
    // Two system calls instead of one per entry; a program removed since is searched again.
    if (auto still = FindProgram(found->second, path_var, spec.cwd)) return still;
    found_programs_.erase(found);
  }
  Result<std::string> program = FindProgram(name, path_var, spec.cwd);
  if (program) found_programs_.emplace(std::move(key), *program);
  return program;
}

// The watchdog gives what it stops the longest grace of anything started here: a Packer bake
// SIGKILLed along with the runner still gets its time to delete what it made in AWS.
void PosixProcessRunner::TellWatchdogGrace(std::chrono::milliseconds grace) {
  if (watchdog_pipe_ < 0 || grace <= watchdog_grace_) return;
  watchdog_grace_ = grace;
  std::string line = std::to_string(grace.count()) + "\n";
  (void)WriteAll(watchdog_pipe_, line);  // without it the watchdog keeps its default grace
}

// SIGINT, SIGTERM and SIGHUP are blocked meanwhile, so that each one either came before (and the
// process is not started) or is pending here once the process exists to get it too.
Result<pid_t> PosixProcessRunner::SpawnInOurGroup(const SpawnRequest& request) {
  sigset_t block;
  sigemptyset(&block);
  for (int sig : kStopSignals) sigaddset(&block, sig);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  Result<pid_t> pid = Fail("");
  if (g_received_signal != 0) {
    pid = Fail("cannot run '" + request.argv[0] + "': the runner received " +
               DescribeSignal(g_received_signal) + " before it started");
  } else {
    pid = Spawn(request);
    sigset_t pending;
    sigpending(&pending);
    // The pending one may have come before the process existed. Again to the group reaches it
    // for sure; here it merges with the pending one.
    for (int sig : kStopSignals) {
      if (pid && sigismember(&pending, sig) == 1) kill(0, sig);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return pid;
}

void PosixProcessRunner::ArmKill(Process* p, Clock::time_point now) {
  auto at = now + p->kill_grace;
  if (!p->kill_at || at < *p->kill_at) p->kill_at = at;
}

void PosixProcessRunner::Terminate(int id, int sig) {
  auto it = processes_.find(id);
  if (it == processes_.end() || it->second.group_gone) return;
  Signal(it->second, sig);
  ArmKill(&it->second, Clock::now());
}

void PosixProcessRunner::Interrupt(int id, int sig) {
  auto it = processes_.find(id);
  if (it == processes_.end() || it->second.group_gone) return;
  if (!it->second.leader_exited) kill(it->second.pid, sig);
  ArmKill(&it->second, Clock::now());
}

void PosixProcessRunner::Kill(int id) {
  auto it = processes_.find(id);
  if (it == processes_.end() || it->second.group_gone) return;
  Signal(it->second, SIGKILL);
  it->second.killed = true;
}

// Wake writes this byte to the signal pipe: no signal has the number 0.
constexpr unsigned char kWakeByte = 0;

void PosixProcessRunner::Wake() {
  unsigned char byte = kWakeByte;
  // Non-blocking: if the pipe is full, Wait has plenty to read already.
  ssize_t ignored = write(signal_pipe_[1], &byte, 1);
  (void)ignored;
}

void PosixProcessRunner::ReadSignalPipe(std::vector<ProcessEvent>* events, bool* child_exited,
                                        bool* woken) {
  unsigned char buffer[256];
  // A pipe gives what it holds: a read short of the buffer emptied it.
  for (ssize_t n = static_cast<ssize_t>(sizeof buffer); n == static_cast<ssize_t>(sizeof buffer);) {
    n = read(signal_pipe_[0], buffer, sizeof buffer);
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] == kWakeByte) {
        *woken = true;
      } else if (buffer[i] == SIGCHLD) {
        *child_exited = true;
      } else {
        ProcessEvent event;
        event.type = ProcessEvent::Type::kSignal;
        event.signal = buffer[i];
        events->push_back(std::move(event));
      }
    }
  }
}

// waitpid(-1) also reaps orphans reparented to us as subreaper, whose exit nobody else awaits.
void PosixProcessRunner::Reap() {
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (auto& [id, p] : processes_) {
      if (p.pid == pid && !p.leader_exited) {
        p.leader_exited = true;
        p.exit_code = ExitCode(status);
        break;
      }
    }
  }
}

// The list is reliable without stopping anything: a child leaves it only when reaped, which
// only this thread does, so no entry shifts while it is read, and one adopted meanwhile shows
// or is the next call's.
// An orphan goes to a live thread of its subreaper, the first in the thread group: the main
// thread, which outlives the others (the kernel's find_new_reaper). So its list alone is read,
// through a descriptor kept open: a read from offset 0 makes the kernel list them anew.
bool PosixProcessRunner::HasAdoptedChild() {
  if (!children_.valid()) {
    std::string pid = std::to_string(getpid());
    std::string path = "/proc/" + pid + "/task/" + pid + "/children";
    children_ = UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!children_.valid()) return true;
  }
  std::string list;
  // The kernel fills the buffer unless the list ends first.
  for (char buffer[4096];;) {
    ssize_t n = pread(children_.get(), buffer, sizeof buffer, static_cast<off_t>(list.size()));
    if (n < 0) return true;
    list.append(buffer, static_cast<size_t>(n));
    if (n < static_cast<ssize_t>(sizeof buffer)) break;
  }
  for (std::string_view rest = list; !rest.empty();) {
    size_t end = std::min(rest.find(' '), rest.size());
    pid_t pid = 0;
    std::from_chars(rest.data(), rest.data() + end, pid);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (pid == 0 || pid == g_watchdog.pid) continue;
    if (std::ranges::none_of(processes_,
                             [pid](const auto& entry) { return entry.second.pid == pid; })) {
      return true;
    }
  }
  return false;
}

// Must follow Reap() with no Start() in between: once the group is empty its id may be reused.
void PosixProcessRunner::CheckGroups(Clock::time_point now) {
  std::optional<bool> adopted;  // asked once, and only when a group may have emptied
  for (auto& [id, p] : processes_) {
    if (!p.leader_exited || p.group_gone) continue;
    if (!p.own_group) {
      // What it left running shares our group: wait for it rather than signal it.
      if (!HasChildIn(getpgrp())) {
        p.group_gone = true;
        p.kill_at.reset();
      } else if (g_received_signal == 0) {
        if (!p.leftovers_until) p.leftovers_until = now + p.kill_grace;
        if (now >= *p.leftovers_until) {
          p.group_gone = true;
          p.left_running = true;
        }
      }
      continue;
    }
    if (!adopted) adopted = HasAdoptedChild();
    if (AllGone(p, *adopted)) {
      p.group_gone = true;
      p.kill_at.reset();
      // A carrier that died just before the scan (a zombie carries no environment) may be our
      // child, reparented: reaped before kDone, so that "gone" means gone.
      Reap();
    } else if (!p.termed_leftovers) {
      // What the step left running (`server &`, `setsid daemon`) would outlive it and may hold
      // the pipe open.
      p.termed_leftovers = true;
      Signal(p, SIGTERM);
      ArmKill(&p, now);
    } else if (p.killed) {
      // A carrier that forked between our scan and its SIGKILL left a child behind.
      Signal(p, SIGKILL);
    }
  }
}

void PosixProcessRunner::ReadOutput(int id, Process* p, bool final,
                                    std::vector<ProcessEvent>* events) {
  for (int stream = 0; stream < 2; ++stream) {
    int& fd = p->fds[stream];
    if (fd < 0) continue;
    std::string data;
    char buffer[65536];
    bool eof = false;
    // Once the group is gone the pipe holds at most its capacity (1 MiB at most unless
    // raised), unless an escaped process keeps writing: read that much, then stop listening.
    size_t limit = final ? kMaxFinalRead : kMaxReadPerRound;
    while (data.size() < limit) {
      ssize_t n = read(fd, buffer, sizeof buffer);
      if (n > 0) {
        data.append(buffer, n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // EAGAIN: nothing more for now. Any other error: the pipe is unusable; treat as closed.
      eof = n == 0 || errno != EAGAIN;
      break;
    }
    if (eof || final) {
      close(fd);
      fd = -1;
    }
    if (!data.empty()) {
      ProcessEvent event;
      event.type = ProcessEvent::Type::kOutput;
      event.id = id;
      event.data = std::move(data);
      event.stream = stream == 0 ? ProcessEvent::Stream::kStdout : ProcessEvent::Stream::kStderr;
      events->push_back(std::move(event));
    }
  }
}

std::vector<ProcessEvent> PosixProcessRunner::Wait(Clock::time_point deadline) {
  std::vector<ProcessEvent> events;
  bool first = true;
  while (true) {
    bool child_exited = first;  // a SIGCHLD may predate this call and be consumed already
    first = false;
    bool woken = false;
    ReadSignalPipe(&events, &child_exited, &woken);
    auto now = Clock::now();
    if (child_exited) Reap();
    // Also without a SIGCHLD: a lingering group can vanish while its last member is the child
    // of a process other than us.
    CheckGroups(now);

    for (auto& [id, p] : processes_) {
      if (p.kill_at && now >= *p.kill_at && !p.group_gone) {
        Signal(p, SIGKILL);
        p.killed = true;
        p.kill_at.reset();
      }
    }

    for (auto it = processes_.begin(); it != processes_.end();) {
      Process& p = it->second;
      // Once the group is gone, whatever is in the pipe is all there will be from it.
      ReadOutput(it->first, &p, p.group_gone, &events);
      if (p.leader_exited && p.group_gone && p.fds[0] < 0 && p.fds[1] < 0) {
        ProcessEvent event;
        event.type = ProcessEvent::Type::kDone;
        event.id = it->first;
        event.exit_code = p.exit_code;
        event.left_running = p.left_running;
        events.push_back(std::move(event));
        it = processes_.erase(it);
      } else {
        ++it;
      }
    }
    if (!events.empty() || woken) return events;

    now = Clock::now();
    if (now >= deadline) return events;
    auto wake = deadline;
    for (const auto& [id, p] : processes_) {
      if (p.kill_at) wake = std::min(wake, *p.kill_at);
      if (p.leftovers_until) wake = std::min(wake, *p.leftovers_until);
      if (p.leader_exited && !p.group_gone) wake = std::min(wake, now + kGroupRecheck);
    }

    std::vector<pollfd> fds;
    fds.push_back({signal_pipe_[0], POLLIN, 0});
    for (const auto& [id, p] : processes_) {
      for (int fd : p.fds) {
        if (fd >= 0) fds.push_back({fd, POLLIN, 0});
      }
    }
    auto wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now).count();
    if (wait_ns < 0) wait_ns = 0;
    struct timespec timeout = {static_cast<time_t>(wait_ns / 1000000000),
                               static_cast<long>(wait_ns % 1000000000)};
    // EINTR (a signal arrived) is fine: the self-pipe tells us which.
    ppoll(fds.data(), fds.size(), &timeout, nullptr);
  }
}

}  // namespace

std::unique_ptr<ProcessRunner> MakePosixProcessRunner(bool with_watchdog) {
  return std::make_unique<PosixProcessRunner>(with_watchdog);
}

std::string DescribeSignal(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace runner
