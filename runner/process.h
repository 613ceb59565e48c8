// Child processes, one process group each (SPEC sections 3 and 5; house style 5).
// The scheduler depends only on the ProcessRunner interface, so it is tested with a fake.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/result.h"

namespace runner {

// Every process started gets this variable, its value the inherited one (if any) and a token
// of its own, separated by spaces: it follows a process that leaves its group (setsid, set -m,
// a double fork) through fork and exec, so that it can be found and stopped with its step.
inline constexpr std::string_view kProcessCookieVar = "RUNNER_PROCESS_COOKIE";

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH of `env` when it has no '/'
  std::vector<std::string> env;   // KEY=VALUE
  std::string cwd;
  // Between the signal of Terminate (or the leader's exit, for what it left running) and
  // SIGKILL to the group. For a process without a group of its own, see own_process_group.
  std::chrono::milliseconds kill_grace{10000};
  // false: the process stays in the caller's process group, so that a signal to that group (a
  // terminal's Ctrl-C, the runner's signal to a step) reaches it and all it started exactly
  // once, and the supervisor sends it none of its own:
  // - Start fails, starting nothing, once the runner received SIGINT, SIGTERM or SIGHUP (the
  // process
  //   would never get that signal). One arriving while it starts is sent to the caller's group
  //   again, so that the new process gets it too.
  // - Terminate and Kill signal the process alone (kill_grace bounds Terminate as usual).
  // - kDone comes once it exited and the runner has no child left in the caller's group (a
  //   subreaper, the runner inherits what the process left running; several such processes are
  //   waited for together), or, while no SIGINT, SIGTERM or SIGHUP was received, kill_grace after
  //   its exit: then `left_running` is set, and what is left is not signalled (it shares the
  //   caller's group) but left to whoever owns that group. After a signal the wait has no
  //   bound of its own: what is left got the signal too and is cleaning up, and whoever sent
  //   it bounds the wait.
  bool own_process_group = true;
  // true: stderr gets a pipe of its own and kOutput events say which stream they hold; false:
  // both go to one pipe, in the order written, reported as kStdout.
  bool separate_stderr = false;
};

struct ProcessEvent {
  enum class Type {
    kOutput,  // `data` holds bytes the process group wrote to `stream`
    kDone,    // the leader exited, the whole group is gone and the output is drained
    kSignal,  // the runner received `signal` (SIGINT, SIGTERM or SIGHUP)
  };
  Type type = Type::kOutput;
  int id = 0;  // the process, for kOutput and kDone
  std::string data;
  // kDone: the leader's exit code, or 128+N when killed by signal N.
  int exit_code = 0;
  int signal = 0;  // kSignal
  enum class Stream { kStdout, kStderr };
  Stream stream = Stream::kStdout;  // kOutput
  // kDone of a process without a group of its own: it was reported done while what it left
  // running still ran (see ProcessSpec::own_process_group).
  bool left_running = false;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;

  // Starts a process in a new process group (unless the spec says otherwise), stdin /dev/null,
  // stdout and stderr to one pipe (or two), every signal at its default disposition and none
  // blocked. Returns an id. By value: what it is given moves into the child's arguments.
  virtual Result<int> Start(ProcessSpec spec) = 0;

  // Sends `sig` to the process's whole group, and to the processes carrying its cookie that left
  // the group, then SIGKILL to all of them once the spec's kill_grace has passed without them
  // being gone. ("The group" below means both, for a process with a group of its own.)
  virtual void Terminate(int id, int sig) = 0;

  // Sends `sig` to the process alone, then SIGKILL to the whole group (as Terminate) once the
  // spec's kill_grace has passed without them being gone: for a process that passes the signal
  // on to what it started itself (a nested runner, whose steps must get one signal, not two).
  virtual void Interrupt(int id, int sig) = 0;

  // SIGKILL to the whole group at once.
  virtual void Kill(int id) = 0;

  // Waits until there are events or `deadline` passes; returns the events (possibly none).
  // A process is reported kDone exactly once. When its leader exits while others of its group
  // still run, those get SIGTERM and, after the kill_grace, SIGKILL: a step leaves nothing
  // behind.
  virtual std::vector<ProcessEvent> Wait(std::chrono::steady_clock::time_point deadline) = 0;

  // Makes a Wait in progress (or the next one) return at once, with whatever events there are
  // (possibly none). The one call that is safe from any thread: for a caller whose other
  // threads hand it work while it waits.
  virtual void Wake() = 0;

  // Processes started and not yet reported kDone.
  virtual int running() const = 0;

  // The first SIGINT, SIGTERM or SIGHUP received, 0 while none was: for code that polls for
  // cancellation between calls to Wait.
  virtual int received_signal() const = 0;
};

// The real implementation. Installs handlers for SIGINT, SIGTERM, SIGHUP and SIGCHLD that only
// write to a self-pipe (reported by Wait as kSignal), ignores SIGPIPE and SIGXFSZ (a write to a
// closed pipe or beyond RLIMIT_FSIZE fails instead; children get both back at their default),
// and makes the runner a child subreaper so that orphaned descendants of a step are reaped here.
// One per process. Its destructor SIGKILLs what still runs (a process without a group of its
// own: the process alone), reaps it and restores the previous dispositions, mask and subreaper
// state; the first SIGINT, SIGTERM or SIGHUP it caught is raised again when the caller would
// have seen it (a handler function, or a blocked signal not ignored), never when it would end
// the process (the default disposition, unblocked).
// `with_watchdog`: forks a watchdog (in a process group of its own) that stops the processes
// started here once this process is gone, even when it was killed with SIGKILL: SIGTERM to each,
// then SIGKILL to what is left after the longest kill grace of what was started (at least 2 s).
// It finds them by their tokens in kProcessCookieVar, so it sees only the processes whose
// environment it may read (all, as root; the same user's, else). A watchdog that cannot start is
// a warning on stderr.
std::unique_ptr<ProcessRunner> MakePosixProcessRunner(bool with_watchdog = false);

// "SIGHUP" for SIGHUP; "signal N" for a number without a name.
std::string DescribeSignal(int sig);

}  // namespace runner
