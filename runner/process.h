// Child processes, one process group each (SPEC sections 3 and 5; house style 5).
// The scheduler depends only on the ProcessRunner interface, so it is tested with a fake.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runner/result.h"

namespace runner {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH of `env` when it has no '/'
  std::vector<std::string> env;   // KEY=VALUE
  std::string cwd;
  // Between the signal of Terminate (or the leader's exit, for what it left running) and
  // SIGKILL to the group.
  std::chrono::milliseconds kill_grace{10000};
};

struct ProcessEvent {
  enum class Type {
    kOutput,  // `data` holds bytes the process group wrote to stdout or stderr (merged)
    kDone,    // the leader exited, the whole group is gone and the output is drained
    kSignal,  // the runner received `signal` (SIGINT or SIGTERM)
  };
  Type type = Type::kOutput;
  int id = 0;  // the process, for kOutput and kDone
  std::string data;
  // kDone: the leader's exit code, or 128+N when killed by signal N.
  int exit_code = 0;
  int signal = 0;  // kSignal
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;

  // Starts a process in a new process group, stdin /dev/null, stdout and stderr to one pipe,
  // every signal at its default disposition and none blocked. Returns an id.
  virtual Result<int> Start(const ProcessSpec& spec) = 0;

  // Sends `sig` to the process's whole group, then SIGKILL to the group once the spec's
  // kill_grace has passed without the group being gone.
  virtual void Terminate(int id, int sig) = 0;

  // SIGKILL to the whole group at once.
  virtual void Kill(int id) = 0;

  // Waits until there are events or `deadline` passes; returns the events (possibly none).
  // A process is reported kDone exactly once. When its leader exits while others of its group
  // still run, those get SIGTERM and, after the kill_grace, SIGKILL: a step leaves nothing
  // behind.
  virtual std::vector<ProcessEvent> Wait(std::chrono::steady_clock::time_point deadline) = 0;

  // Processes started and not yet reported kDone.
  virtual int running() const = 0;

  // The first SIGINT or SIGTERM received, 0 while none was: for code that polls for
  // cancellation between calls to Wait.
  virtual int received_signal() const = 0;
};

// The real implementation. Installs handlers for SIGINT, SIGTERM and SIGCHLD that only write to
// a self-pipe (reported by Wait as kSignal), and makes the runner a child subreaper so that
// orphaned descendants of a step are reaped here. One per process.
std::unique_ptr<ProcessRunner> MakePosixProcessRunner();

}  // namespace runner
