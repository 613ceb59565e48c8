#include "steps/packer.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

#include "runner/expression.h"
#include "runner/fs.h"
#include "runner/sha256.h"
#include "runner/spawn.h"
#include "runner/workspace_path.h"

// Why Packer shares the step's process group instead of getting one of its own (as
// ProcessRunner would give it): the runner's SIGKILL after the kill_grace, and its immediate
// SIGKILL on a second Ctrl-C, go to the step's group only. In a group of its own, Packer and
// the EC2 instance it is tearing down would outlive the runner. In the same group, every
// signal the runner sends reaches Packer exactly once, so this process never forwards one.

namespace runner {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kComma = "%!(PACKER_COMMA)";
constexpr size_t kMaxStatusErrorLength = 400;
// Between looks at children that exited: SIGCHLD is not caught (its old disposition would
// have to be restored), so exits are noticed by polling at this interval.
constexpr auto kPollInterval = std::chrono::milliseconds(100);
// After a successful Packer exits, how long to wait for what it left running before leaving
// it to the runner (which terminates a step's leftovers).
constexpr auto kLeftoverWait = std::chrono::seconds(2);

// ---------------------------------------------------------------------------------------
// Configuration.

bool IsAmiRegion(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

void ValidateList(const ConfigNode& node, std::string_view what, Diagnostics& diags) {
  auto items = ExpectScalarOrList(node, what, diags);
  if (!items) return;
  for (const ConfigNode* item : *items) {
    if (item->scalar.text.empty()) diags.Error(item->where, fmt::format("'{}' is empty", what));
  }
}

void Validate(const ConfigNode& config, Diagnostics& diags) {
  if (!ExpectMap(config, "packer", diags)) return;
  CheckKeys(config, {"template", "vars", "var_files", "only", "region"}, "packer", diags);
  if (const ConfigNode* node = Require(config, "template", "packer", diags)) {
    if (ExpectScalar(*node, "packer.template", diags) && node->scalar.text.empty()) {
      diags.Error(node->where, "'packer.template' is empty: name a template file or directory");
    }
  }
  if (const ConfigNode* vars = config.Find("vars");
      vars && ExpectMap(*vars, "packer.vars", diags)) {
    for (size_t i = 0; i < vars->fields.size(); ++i) {
      const auto& [name, value] = vars->fields[i];
      SourceLocation where = i < vars->key_locations.size() ? vars->key_locations[i] : vars->where;
      if (name.empty() || name.find('=') != std::string::npos) {
        diags.Error(where, fmt::format("'{}' is not a Packer variable name", name));
      }
      ExpectScalar(value, "packer.vars." + name, diags);
    }
  }
  if (const ConfigNode* node = config.Find("var_files")) {
    ValidateList(*node, "packer.var_files", diags);
  }
  if (const ConfigNode* node = config.Find("only")) ValidateList(*node, "packer.only", diags);
  if (const ConfigNode* node = config.Find("region");
      node && ExpectScalar(*node, "packer.region", diags)) {
    const std::string& text = node->scalar.text;
    if (!HasExpression(text) && !IsAmiRegion(text)) {
      diags.Error(
          node->where,
          fmt::format("'packer.region' must be an AWS region such as eu-west-1, got '{}'", text));
    }
  }
}

Result<std::vector<std::string>> StringList(const nlohmann::ordered_json& value,
                                            std::string_view what) {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_string()) return Fail(fmt::format("packer.{}: expected strings", what));
      out.push_back(item.get<std::string>());
    }
  } else {
    return Fail(fmt::format("packer.{}: expected a list", what));
  }
  for (const auto& item : out) {
    if (item.empty()) return Fail(fmt::format("packer.{}: an entry is empty", what));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Files and the binary.

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string Join(const std::string& dir, const std::string& path) {
  if (path.starts_with('/') || dir.empty()) return path;
  return dir + "/" + path;
}

// Where Packer (run in the step's dir) finds `path`: as written when it exists relative to the
// step's dir, so that Packer's messages show the name the user wrote; else the path in the
// workspace, where a pipeline's paths are usually written from.
Result<std::string> ResolveInput(const std::string& path, std::string_view what, StepIo& io) {
  if (Exists(Join(io.dir(), path))) return path;
  if (path.starts_with('/')) return Fail(fmt::format("packer.{} '{}' does not exist", what, path));
  std::string in_workspace = Join(io.workspace(), path);
  if (Exists(in_workspace)) return in_workspace;
  return Fail(fmt::format("packer.{} '{}' does not exist (looked in {}{})", what, path, io.dir(),
                          io.dir() == io.workspace() ? "" : " and " + io.workspace()));
}

std::string SignalName(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGKILL:
      return "SIGKILL";
    default:
      return fmt::format("signal {}", sig);
  }
}

// ---------------------------------------------------------------------------------------
// Signals.

// The handler's only state: where to write. Set only while no handler of ours is installed.
volatile sig_atomic_t g_signal_fd = -1;

void OnSignal(int sig) {
  int saved_errno = errno;
  unsigned char byte = static_cast<unsigned char>(sig);
  ssize_t ignored = write(g_signal_fd, &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

constexpr int kCaughtSignals[] = {SIGINT, SIGTERM};

// While it lives, SIGINT and SIGTERM are unblocked and written to a pipe instead of ending
// the process, so that the step outlives Packer's cleanup. When destroyed it restores the
// previous handlers and mask, and raises a caught signal again if the caller would have seen
// it (a handler function such as the step entry point's "cancelled" flag, or a signalfd behind
// a blocked mask), so that nothing is lost to the caller.
class SignalCatcher {
 public:
  SignalCatcher() {
    if (pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return;
    g_signal_fd = pipe_[1];
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (size_t i = 0; i < std::size(kCaughtSignals); ++i) {
      sigaction(kCaughtSignals[i], &action, &old_[i]);
    }
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int sig : kCaughtSignals) sigaddset(&unblock, sig);
    pthread_sigmask(SIG_UNBLOCK, &unblock, &old_mask_);
    installed_ = true;
  }

  ~SignalCatcher() {
    if (!installed_) return;
    Take();  // a signal that came since the last look
    for (size_t i = 0; i < std::size(kCaughtSignals); ++i) {
      sigaction(kCaughtSignals[i], &old_[i], nullptr);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    g_signal_fd = -1;
    close(pipe_[0]);
    close(pipe_[1]);
    for (size_t i = 0; i < std::size(kCaughtSignals); ++i) {
      if (first_ != kCaughtSignals[i]) continue;
      bool is_function = (old_[i].sa_flags & SA_SIGINFO) ||
                         (old_[i].sa_handler != SIG_DFL && old_[i].sa_handler != SIG_IGN);
      bool was_blocked = sigismember(&old_mask_, first_) == 1;
      // Never at SIG_DFL and unblocked: that would kill the process we are returning to.
      if (is_function || (was_blocked && old_[i].sa_handler != SIG_IGN)) raise(first_);
    }
  }

  SignalCatcher(const SignalCatcher&) = delete;
  SignalCatcher& operator=(const SignalCatcher&) = delete;

  bool installed() const { return installed_; }
  int fd() const { return pipe_[0]; }
  int first() const { return first_; }

  // The signals caught since the last call.
  std::vector<int> Take() {
    std::vector<int> out;
    unsigned char buffer[64];
    ssize_t n;
    while ((n = read(pipe_[0], buffer, sizeof buffer)) > 0) {
      for (ssize_t i = 0; i < n; ++i) out.push_back(buffer[i]);
    }
    if (!out.empty() && first_ == 0) first_ = out.front();
    return out;
  }

 private:
  int pipe_[2] = {-1, -1};
  struct sigaction old_[std::size(kCaughtSignals)];
  sigset_t old_mask_;
  bool installed_ = false;
  int first_ = 0;
};

// Blocks SIGINT and SIGTERM while it lives: around the start of Packer, so that a signal
// cannot fall between "not cancelled yet" and Packer existing to receive it too.
class SignalBlock {
 public:
  SignalBlock() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kCaughtSignals) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SignalBlock() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;

  // A caught signal that is pending now.
  static int Pending() {
    sigset_t pending;
    sigpending(&pending);
    for (int sig : kCaughtSignals) {
      if (sigismember(&pending, sig)) return sig;
    }
    return 0;
  }

 private:
  sigset_t old_;
};

// While it lives this process is a child subreaper: what Packer leaves running (a
// provisioner's trap still cleaning up after Packer exited) becomes our child, so we can
// wait for it.
class Subreaper {
 public:
  Subreaper() {
    prctl(PR_GET_CHILD_SUBREAPER, &old_);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  ~Subreaper() { prctl(PR_SET_CHILD_SUBREAPER, old_); }
  Subreaper(const Subreaper&) = delete;
  Subreaper& operator=(const Subreaper&) = delete;

 private:
  int old_ = 0;
};

// ---------------------------------------------------------------------------------------
// The Packer process.

struct PackerProcess {
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
};

// Starts Packer in this process's group (see the top of the file), stdin /dev/null, stdout and
// stderr to two pipes, every signal at its default disposition and none blocked (an ignored
// or blocked signal would survive exec).
Result<PackerProcess> StartPacker(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, const std::string& cwd) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    return Fail(fmt::format("cannot create a pipe: {}", ErrnoText(errno)));
  if (pipe2(err, O_CLOEXEC) != 0) {
    int saved = errno;
    close(out[0]);
    close(out[1]);
    return Fail(fmt::format("cannot create a pipe: {}", ErrnoText(saved)));
  }
  fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
  fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);

  // Not a new process group: see the top of the file.
  Result<pid_t> pid = Spawn({.program = argv[0],
                             .argv = argv,
                             .env = env,
                             .cwd = cwd,
                             .new_process_group = false,
                             .stdout_fd = out[1],
                             .stderr_fd = err[1]});
  close(out[1]);
  close(err[1]);
  if (!pid) {
    close(out[0]);
    close(err[0]);
    return Fail(pid.error());
  }
  return PackerProcess{*pid, out[0], err[0]};
}

// Reads what `fd` has now. Returns false at end of file (or on an error, which is the same
// for us: nothing more will come).
bool ReadAvailable(int fd, std::string* data) {
  char buffer[65536];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      data->append(buffer, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Complete lines of a stream, for stderr (so that its lines do not split Packer's).
class LineBuffer {
 public:
  std::string Feed(std::string_view data) {
    partial_.append(data);
    size_t end = partial_.rfind('\n');
    if (end == std::string::npos) return {};
    std::string lines = partial_.substr(0, end + 1);
    partial_.erase(0, end + 1);
    return lines;
  }
  std::string Finish() {
    if (partial_.empty()) return {};
    std::string rest = std::move(partial_) + "\n";
    partial_.clear();
    return rest;
  }

 private:
  std::string partial_;
};

struct RunResult {
  bool started = true;  // false: cancelled before Packer was started
  int exit_code = 0;
  int cancel_signal = 0;   // the first SIGINT/SIGTERM caught, or 0
  bool leftovers = false;  // children still running when we stopped waiting
};

// Runs Packer to its end, logging its output as it comes. REQUIRES: the caller has no child
// processes of its own: every child that exits meanwhile is reaped here.
Result<RunResult> RunPacker(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env, StepIo& io,
                            PackerOutputParser& parser) {
  SignalCatcher signals;
  if (!signals.installed()) {
    return Fail(fmt::format("cannot create a pipe: {}", ErrnoText(errno)));
  }
  Subreaper subreaper;
  PackerProcess packer;
  {
    SignalBlock block;
    signals.Take();
    if (signals.first() != 0 || SignalBlock::Pending() != 0 || io.cancelled()) {
      return RunResult{.started = false, .cancel_signal = signals.first()};
    }
    auto started = StartPacker(argv, env, io.dir());
    if (!started) return Fail(started.error());
    packer = *started;
    // A signal that came while blocked may have come before Packer existed. Sending it to the
    // group again reaches Packer for sure; it is merged with the one pending here, and a
    // second one is harmless to Packer, which acts on the first only.
    if (int sig = SignalBlock::Pending()) kill(0, sig);
  }

  PackerOutputParser& out = parser;
  LineBuffer err;
  RunResult result;
  bool packer_done = false;
  Clock::time_point leftover_deadline;
  auto log = [&io](const std::string& text) {
    if (!text.empty()) io.Log(text);
  };
  auto read_pipes = [&](bool final) {
    for (int* fd : {&packer.out_fd, &packer.err_fd}) {
      if (*fd < 0) continue;
      std::string data;
      bool open = ReadAvailable(*fd, &data);
      log(fd == &packer.out_fd ? out.Feed(data) : err.Feed(data));
      // Once Packer is gone, whatever still holds a pipe open escaped it: stop listening.
      if (!open || final) {
        close(*fd);
        *fd = -1;
      }
    }
  };

  while (true) {
    std::vector<pollfd> fds = {{signals.fd(), POLLIN, 0}};
    if (packer.out_fd >= 0) fds.push_back({packer.out_fd, POLLIN, 0});
    if (packer.err_fd >= 0) fds.push_back({packer.err_fd, POLLIN, 0});
    // EINTR (a signal came) is fine: the pipe says which.
    poll(fds.data(), fds.size(), static_cast<int>(kPollInterval.count()));

    for (int sig : signals.Take()) {
      if (result.cancel_signal == 0) {
        result.cancel_signal = sig;
        log(fmt::format("runner: {} received: Packer got it too; waiting for it to clean up\n",
                        SignalName(sig)));
      } else {
        log(fmt::format("runner: {} received again; still waiting for Packer\n", SignalName(sig)));
      }
    }
    read_pipes(false);

    bool no_children = false;
    while (true) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid < 0 && errno == EINTR) continue;
      if (pid < 0) no_children = true;
      if (pid <= 0) break;
      if (pid == packer.pid) {
        packer_done = true;
        result.exit_code = ExitCode(status);
        leftover_deadline = Clock::now() + kLeftoverWait;
      }
    }
    if (!packer_done) continue;
    read_pipes(true);
    if (no_children) break;
    // Cancelled: a provisioner's trap may still be undoing what it made; the runner's
    // kill_grace bounds this wait.
    if (result.cancel_signal == 0 && Clock::now() >= leftover_deadline) {
      result.leftovers = true;
      break;
    }
  }
  log(out.Finish());
  log(err.Finish());
  return result;
}

// One line of an error message for the step's status: Packer's errors span lines.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (out.size() > kMaxStatusErrorLength) out = out.substr(0, kMaxStatusErrorLength) + "...";
  return out;
}

// The local files of the artifacts (a `file` or `qemu` builder's output), for the report.
void AddFileArtifacts(const std::vector<PackerArtifact>& artifacts, StepIo& io) {
  std::set<std::string> seen;
  for (const auto& artifact : artifacts) {
    for (const auto& file : artifact.files) {
      std::string path = Join(io.dir(), file);
      struct stat st;
      if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      std::string shown = WorkspaceRelative(path, io.workspace());
      if (!seen.insert(shown).second) continue;
      auto digest = FileSha256Hex(path);
      if (!digest) continue;
      io.AddArtifact(Artifact{shown, static_cast<std::uint64_t>(st.st_size), *digest, ""});
    }
  }
}

Status Execute(const nlohmann::ordered_json& json, StepIo& io) {
  auto config = ParsePackerConfig(json);
  if (!config) return Fail(config.error());
  auto template_path = ResolveInput(config->template_path, "template", io);
  if (!template_path) return Fail(template_path.error());
  std::vector<std::string> var_files;
  for (const auto& file : config->var_files) {
    auto resolved = ResolveInput(file, "var_files", io);
    if (!resolved) return Fail(resolved.error());
    var_files.push_back(*resolved);
  }
  auto packer = FindPacker(io.env(), io.dir());
  if (!packer) return Fail(packer.error());

  std::vector<std::string> argv = PackerBuildCommand(*packer, *config, *template_path, var_files);
  Environment env = io.env();
  // Packer otherwise asks checkpoint.hashicorp.com for news on every run; a build host may
  // well be offline.
  env.try_emplace("CHECKPOINT_DISABLE", "1");

  std::string shown;
  for (const auto& arg : argv) shown += (shown.empty() ? "" : " ") + arg;
  io.Log("runner: " + shown + "\n");

  PackerOutputParser parser;
  auto run = RunPacker(argv, ToEnvp(env), io, parser);
  if (!run) return Fail(run.error());
  if (run->leftovers) {
    io.Log("runner: Packer left processes running; the runner will stop them\n");
  }
  if (!run->started) {
    return Fail(fmt::format("cancelled{} before Packer was started",
                            run->cancel_signal ? " by " + SignalName(run->cancel_signal) : ""));
  }
  if (run->cancel_signal != 0) {
    return Fail(fmt::format("cancelled by {}: Packer stopped its builds and exited with status {}",
                            SignalName(run->cancel_signal), run->exit_code));
  }
  if (run->exit_code != 0) {
    std::string reason = parser.last_error().empty() ? std::string("see the log above")
                                                     : OneLine(parser.last_error());
    if (run->exit_code > 128) {
      return Fail(
          fmt::format("packer was killed by {}: {}", SignalName(run->exit_code - 128), reason));
    }
    return Fail(fmt::format("packer build failed (exit status {}): {}", run->exit_code, reason));
  }
  auto outputs = PackerOutputs(parser.artifacts(), config->region);
  if (!outputs) return Fail(outputs.error());
  for (const auto& [name, value] : *outputs) io.SetOutput(name, value);
  AddFileArtifacts(parser.artifacts(), io);
  return {};
}

}  // namespace

const LegacyStepKind kPackerStep = {
    .name = "packer",
    .default_kill_grace = std::chrono::minutes(10),
    .validate = Validate,
    .execute = Execute,
};

// ---------------------------------------------------------------------------------------

Result<PackerConfig> ParsePackerConfig(const nlohmann::ordered_json& config) {
  try {
    if (!config.is_object()) return Fail("packer: expected a mapping");
    PackerConfig out;
    auto it = config.find("template");
    if (it == config.end() || !it->is_string() || it->get<std::string>().empty()) {
      return Fail("packer.template: missing or empty");
    }
    out.template_path = it->get<std::string>();
    if (auto vars = config.find("vars"); vars != config.end() && !vars->is_null()) {
      if (!vars->is_object()) return Fail("packer.vars: expected a mapping");
      for (const auto& [name, value] : vars->items()) {
        if (name.empty() || name.find('=') != std::string::npos) {
          return Fail(fmt::format("packer.vars: '{}' is not a Packer variable name", name));
        }
        if (value.is_string()) {
          out.vars.emplace_back(name, value.get<std::string>());
        } else if (value.is_primitive() && !value.is_null()) {
          out.vars.emplace_back(name, value.dump());
        } else {
          return Fail(fmt::format("packer.vars.{}: expected a string", name));
        }
      }
    }
    if (auto files = config.find("var_files"); files != config.end() && !files->is_null()) {
      auto list = StringList(*files, "var_files");
      if (!list) return Fail(list.error());
      out.var_files = std::move(*list);
    }
    if (auto only = config.find("only"); only != config.end() && !only->is_null()) {
      auto list = StringList(*only, "only");
      if (!list) return Fail(list.error());
      out.only = std::move(*list);
    }
    if (auto region = config.find("region"); region != config.end() && !region->is_null()) {
      if (!region->is_string()) return Fail("packer.region: expected a string");
      out.region = region->get<std::string>();
      if (!IsAmiRegion(out.region)) {
        return Fail(
            fmt::format("packer.region: '{}' is not an AWS region such as eu-west-1", out.region));
      }
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return Fail(fmt::format("packer: bad configuration: {}", e.what()));
  }
}

Result<std::string> FindPacker(const Environment& env, const std::string& dir) {
  constexpr std::string_view kHowTo = "install it (apt-get install packer) or set PACKER";
  std::optional<std::string> from_env = Lookup(env, "PACKER");
  if (from_env && from_env->empty()) from_env.reset();
  Result<std::string> found = FindProgram(from_env.value_or("packer"), Lookup(env, "PATH"), dir);
  if (!found) {
    return Fail(fmt::format("packer not found: {}{}; {}",
                            from_env ? "PACKER=" + *from_env + ": " : "", found.error(), kHowTo));
  }
  return Join(dir, *found);
}

std::vector<std::string> PackerBuildCommand(const std::string& packer, const PackerConfig& config,
                                            const std::string& template_path,
                                            const std::vector<std::string>& var_files) {
  std::vector<std::string> argv = {packer, "build", "-machine-readable", "-color=false"};
  for (const auto& [name, value] : config.vars) {
    argv.push_back("-var");
    argv.push_back(name + "=" + value);
  }
  for (const auto& file : var_files) {
    argv.push_back("-var-file");
    argv.push_back(file);
  }
  if (!config.only.empty()) {
    std::string only;
    for (const auto& name : config.only) only += (only.empty() ? "" : ",") + name;
    argv.push_back("-only");
    argv.push_back(only);
  }
  argv.push_back(template_path);
  return argv;
}

std::string UnescapeMachineReadable(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size();) {
    if (field.substr(i).starts_with(kComma)) {
      out.push_back(',');
      i += kComma.size();
    } else if (field.substr(i).starts_with("\\r\\n")) {
      out.push_back('\n');
      i += 4;
    } else if (field.substr(i).starts_with("\\n") || field.substr(i).starts_with("\\r")) {
      out.push_back('\n');
      i += 2;
    } else {
      out.push_back(field[i]);
      ++i;
    }
  }
  return out;
}

std::optional<MachineReadableLine> ParseMachineReadableLine(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  std::vector<std::string_view> fields;
  size_t begin = 0;
  while (true) {
    size_t end = line.find(',', begin);
    fields.push_back(line.substr(begin, end == std::string_view::npos ? end : end - begin));
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  if (fields.size() < 3 || fields[0].empty() || fields[2].empty()) return std::nullopt;
  if (!std::all_of(fields[0].begin(), fields[0].end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  MachineReadableLine out;
  out.timestamp = fields[0];
  out.target = UnescapeMachineReadable(fields[1]);
  out.type = fields[2];
  for (size_t i = 3; i < fields.size(); ++i) out.data.push_back(UnescapeMachineReadable(fields[i]));
  return out;
}

std::string PackerOutputParser::Feed(std::string_view data) {
  std::string log;
  partial_.append(data);
  size_t begin = 0;
  while (true) {
    size_t end = partial_.find('\n', begin);
    if (end == std::string::npos) break;
    log += Line(std::string_view(partial_).substr(begin, end - begin));
    begin = end + 1;
  }
  partial_.erase(0, begin);
  return log;
}

std::string PackerOutputParser::Finish() {
  if (partial_.empty()) return {};
  std::string log = Line(partial_);
  partial_.clear();
  return log;
}

PackerArtifact& PackerOutputParser::ArtifactAt(const std::string& build, int index) {
  for (auto& artifact : artifacts_) {
    if (artifact.build == build && artifact.index == index) return artifact;
  }
  PackerArtifact& artifact = artifacts_.emplace_back();
  artifact.build = build;
  artifact.index = index;
  return artifact;
}

std::string PackerOutputParser::Line(std::string_view line) {
  auto parsed = ParseMachineReadableLine(line);
  if (!parsed) {
    if (line.empty()) return {};
    return std::string(line) + "\n";
  }
  if (parsed->type == "ui") {
    // `ui,KIND,TEXT`; a comma Packer failed to escape would split TEXT: join it back.
    std::string text;
    for (size_t i = 1; i < parsed->data.size(); ++i) {
      text += (i > 1 ? "," : "") + parsed->data[i];
    }
    while (text.ends_with('\n')) text.pop_back();
    if (!parsed->data.empty() && parsed->data[0] == "error") {
      size_t first = text.find_first_not_of('\n');
      last_error_ = first == std::string::npos ? std::string() : text.substr(first);
    }
    return text + "\n";
  }
  if (parsed->type == "artifact" && parsed->data.size() >= 2) {
    int index = 0;
    const std::string& number = parsed->data[0];
    if (number.empty() ||
        !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        number.size() > 6) {
      return {};
    }
    index = std::stoi(number);
    PackerArtifact& artifact = ArtifactAt(parsed->target, index);
    const std::string& key = parsed->data[1];
    std::string value = parsed->data.size() >= 3 ? parsed->data[2] : std::string();
    if (key == "builder-id") {
      artifact.builder_id = value;
    } else if (key == "id") {
      artifact.id = value;
    } else if (key == "string") {
      artifact.description = value;
    } else if (key == "file" && parsed->data.size() >= 4) {
      artifact.files.push_back(parsed->data[3]);
    }
  }
  return {};
}

std::vector<PackerArtifact> DistinctArtifacts(const std::vector<PackerArtifact>& artifacts) {
  std::vector<PackerArtifact> out;
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const auto& artifact : artifacts) {
    if (artifact.id.empty()) continue;
    if (!seen.emplace(artifact.build, artifact.builder_id, artifact.id).second) continue;
    out.push_back(artifact);
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseAmiList(std::string_view id) {
  std::vector<std::pair<std::string, std::string>> out;
  if (id.empty()) return std::nullopt;
  size_t begin = 0;
  while (true) {
    size_t end = id.find(',', begin);
    std::string_view pair = id.substr(begin, end == std::string_view::npos ? end : end - begin);
    while (pair.starts_with(' ')) pair.remove_prefix(1);
    while (pair.ends_with(' ')) pair.remove_suffix(1);
    size_t colon = pair.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view region = pair.substr(0, colon);
    std::string_view ami = pair.substr(colon + 1);
    if (!IsAmiRegion(region) || !ami.starts_with("ami-") || ami.size() == 4) return std::nullopt;
    if (!std::all_of(ami.begin() + 4, ami.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        })) {
      return std::nullopt;
    }
    out.emplace_back(region, ami);
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> PackerOutputs(
    const std::vector<PackerArtifact>& artifacts, const std::string& region) {
  std::vector<PackerArtifact> distinct = DistinctArtifacts(artifacts);
  if (distinct.empty()) {
    return Fail(
        "packer build produced no artifact id: check that the template's builders ran (a wrong "
        "'only' builds nothing) and that no post-processor discards the build's artifact");
  }
  std::vector<std::pair<std::string, std::string>> outputs;
  outputs.emplace_back("artifact_id", distinct.front().id);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& artifact : distinct) {
    list.push_back(
        {{"build", artifact.build}, {"builder_id", artifact.builder_id}, {"id", artifact.id}});
  }
  outputs.emplace_back("artifacts",
                       list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));

  // region -> AMI, first build first.
  std::vector<std::pair<std::string, std::string>> amis;
  for (const auto& artifact : distinct) {
    auto pairs = ParseAmiList(artifact.id);
    if (!pairs) continue;
    for (const auto& [where, ami] : *pairs) {
      bool known = std::any_of(amis.begin(), amis.end(),
                               [&](const auto& entry) { return entry.first == where; });
      if (!known) amis.emplace_back(where, ami);
    }
  }
  if (!region.empty()) {
    auto it = std::find_if(amis.begin(), amis.end(),
                           [&](const auto& entry) { return entry.first == region; });
    if (it == amis.end()) {
      std::string made;
      for (const auto& [where, ami] : amis) made += (made.empty() ? "" : ", ") + where;
      return Fail(fmt::format("packer.region is '{}' but the build made no AMI there ({})", region,
                              made.empty() ? "it made no AMI at all" : "AMIs in: " + made));
    }
    outputs.emplace_back("ami_id", it->second);
  } else if (!amis.empty()) {
    outputs.emplace_back("ami_id", amis.front().second);
  }
  for (const auto& [where, ami] : amis) {
    std::string name = "ami_" + where;
    std::replace(name.begin(), name.end(), '-', '_');
    outputs.emplace_back(name, ami);
  }
  return outputs;
}

}  // namespace runner
