#include "runner/worker/worker.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "runner/aws/http.h"
#include "runner/backoff.h"
#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/environment.h"
#include "runner/fs.h"
#include "runner/periodic_thread.h"
#include "runner/process.h"
#include "runner/queue/message_queue.h"
#include "runner/serve/build_job.h"
#include "runner/serve/build_queue.h"
#include "runner/serve/git_mirror.h"
#include "runner/serve/github_status.h"
#include "runner/worker/log_shipper.h"
#include "runner/worker/records.h"

namespace runner::worker {

namespace {

namespace stdfs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using serve::QueueEntry;
using serve::RepoConfig;
using serve::ServeConfig;

// The wait after a failed receive, doubling up to the maximum while the queue stays away.
constexpr auto kFirstRetry = std::chrono::milliseconds(500);
constexpr auto kMaxRetry = std::chrono::seconds(30);

std::string Now() { return FormatTimestamp(std::chrono::system_clock::now()); }

std::chrono::seconds Seconds(Duration duration) {
  return std::max(std::chrono::seconds(1),
                  std::chrono::duration_cast<std::chrono::seconds>(duration));
}

void Say(const std::string& line) {
  std::printf("runner worker: %s\n", line.c_str());
  std::fflush(stdout);
}

// Keeps a message invisible while its build runs: a third of the visibility timeout after the
// last extension was sent, its visibility is set to the whole timeout again; one that fails is
// tried again soon, not a third later, for the message's time is running out. The time counts
// from each request's sending, not its answer, which may come late through the clients'
// retries. Once the queue could not be told for a whole timeout, the message may be someone
// else's: lost() holds and `on_lost` is called.
class Heartbeat {
 public:
  Heartbeat(queue::MessageQueue& queue, std::string receipt, std::chrono::seconds visibility,
            std::function<void()> on_lost)
      : queue_(queue),
        receipt_(std::move(receipt)),
        visibility_(visibility),
        on_lost_(std::move(on_lost)),
        last_ok_(Clock::now()),
        thread_(last_ok_ + Duration(visibility_) / 3, [this] { return Extend(); }) {}

  bool lost() const { return lost_.load(); }

 private:
  std::optional<Clock::time_point> Extend() {
    const auto sent = Clock::now();
    Status extended = queue_.ChangeVisibility(receipt_, visibility_);
    if (extended) {
      last_ok_ = sent;
      return sent + Duration(visibility_) / 3;
    }
    Say(fmt::format("heartbeat: {}", extended.error()));
    if (Clock::now() - last_ok_ >= visibility_) {
      lost_ = true;
      on_lost_();
      return std::nullopt;
    }
    return Clock::now() + std::max(Duration(visibility_) / 10, Duration(100));
  }

  queue::MessageQueue& queue_;
  const std::string receipt_;
  const std::chrono::seconds visibility_;
  const std::function<void()> on_lost_;
  Clock::time_point last_ok_;  // the sending of the last extension that succeeded
  std::atomic<bool> lost_{false};
  PeriodicThread thread_;
};

class Worker {
 public:
  Worker(const ServeConfig& config, std::string self_exe)
      : config_(config), self_exe_(std::move(self_exe)) {}

  int Run();

 private:
  // What becomes of the message once its build is handled.
  enum class Ending {
    kDone,     // recorded (built, skipped or failed for good): deleted
    kRelease,  // not finished, the worker stops: visible again at once
    kLost,     // the heartbeat lost it: someone else may hold it now, it is left alone
  };

  Status Start();
  void Take(const queue::Message& message);
  Result<Ending> Handle(const QueueEntry& entry, Heartbeat& heartbeat);
  Result<Ending> RunJob(const QueueEntry& entry, int attempt, const std::string& run_dir,
                        const std::string& worktree, Heartbeat& heartbeat);
  // Posts the commit status of `entry` when its repository has a token; a failure is said.
  void PostStatus(const QueueEntry& entry, std::string state, std::string_view what);
  // Records `entry` with `status` and `reason` and no steps, unless it has a record.
  Status Record(const QueueEntry& entry, std::string_view status, const std::string& reason);
  Status MarkAbandoned(const std::string& id, int attempt, const std::string& reason);
  bool Stopping() const { return stopping_ || processes_->received_signal() != 0; }
  // Notes a signal seen by Wait.
  void OnSignal();

  const ServeConfig& config_;
  const std::string self_exe_;
  std::string name_;  // host:pid, in the records of attempts
  std::unique_ptr<Records> records_;
  std::unique_ptr<queue::MessageQueue> queue_;
  int max_receives_ = 0;  // the queue's; 0: no dead letters
  std::unique_ptr<ProcessRunner> processes_;
  std::unique_ptr<aws::HttpClient> http_ = aws::MakeCurlHttpClient();  // GitHub's API
  std::vector<std::string> child_env_;
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
};

Status Worker::Start() {
  if (config_.queue.empty()) {
    return Fail(
        fmt::format("{}: no 'queue' to take builds from (an SQS FIFO queue URL or "
                    "file:///DIR)",
                    config_.file));
  }
  for (const char* sub : {"/mirrors", "/worktrees", "/runs"}) {
    std::error_code ec;
    stdfs::create_directories(config_.state_dir + sub, ec);
    if (ec) {
      return Fail(fmt::format("cannot create {}{}: {}", config_.state_dir, sub, ec.message()));
    }
  }
  const Environment environment = CurrentEnvironment();
  auto records = OpenRecords(config_.records, environment,
                             [](std::string_view line) { Say(std::string(line)); });
  if (!records) return Fail(records.error());
  records_ = std::move(*records);
  queue::MessageQueueOptions queue_options;
  queue_options.env = environment;
  queue_options.max_receives = config_.max_receives;
  queue_options.log = [](std::string_view line) { Say(std::string(line)); };
  auto queue = queue::OpenMessageQueue(config_.queue, std::move(queue_options));
  if (!queue) return Fail(queue.error());
  queue_ = std::move(*queue);
  auto max_receives = queue_->MaxReceives();
  if (!max_receives) return Fail(max_receives.error());
  max_receives_ = *max_receives;
  child_env_ = serve::BuildEnvironment(config_, environment);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  name_ = fmt::format("{}:{}", host, ::getpid());
  return {};
}

int Worker::Run() {
  processes_ = MakePosixProcessRunner(/*with_watchdog=*/true);
  if (auto started = Start(); !started) {
    std::fprintf(stderr, "runner: error: %s\n", started.error().c_str());
    return 2;
  }
  Say(fmt::format("{} taking builds from {}, records in {}", name_, queue_->Describe(),
                  records_->store().url()));
  int failures = 0;
  while (!Stopping()) {
    auto message = queue_->Receive(Seconds(config_.poll_wait), Seconds(config_.visibility_timeout),
                                   [this] { return Stopping(); });
    if (!message) {
      Say(message.error());
      WaitUnlessCancelled(DoublingDelay(kFirstRetry, kMaxRetry, failures++),
                          [this] { return Stopping(); });
      continue;
    }
    failures = 0;
    if (*message) Take(**message);
  }
  Say("stopped");
  return 0;
}

void Worker::OnSignal() {
  if (!stopping_) {
    stopping_ = true;
    stop_deadline_ = Clock::now() + config_.stop_grace;
    Say(fmt::format("taking no more builds; the running one is given {}",
                    FormatDuration(config_.stop_grace)));
  } else {
    stop_deadline_ = Clock::now();  // a second signal: cancel now
  }
}

void Worker::Take(const queue::Message& message) {
  auto entry = serve::EntryFromJson(message.body, "a message of " + queue_->Describe());
  if (!entry) {
    // Left to reappear: after the queue's receive limit it goes to the dead letters.
    Say(fmt::format("{} (receive {})", entry.error(), message.receive_count));
    return;
  }
  Heartbeat heartbeat(*queue_, message.receipt, Seconds(config_.visibility_timeout),
                      [this] { processes_->Wake(); });
  auto ending = Handle(*entry, heartbeat);
  if (!ending) {
    Say(fmt::format("{}: {}; handing it back to the queue", entry->id, ending.error()));
    if (max_receives_ > 0 && message.receive_count >= max_receives_) {
      // Its last receive: the queue moves it to the dead letters next, and the page says so.
      (void)Record(*entry, "error",
                   fmt::format("moved to the dead-letter queue after {} receives; the last "
                               "attempt failed: {}",
                               message.receive_count, ending.error()));
    }
    ending = Ending::kRelease;
  }
  Status done;
  switch (*ending) {
    case Ending::kDone:
      done = queue_->Delete(message.receipt);
      break;
    case Ending::kRelease:
      done = queue_->ChangeVisibility(message.receipt, std::chrono::seconds(0));
      break;
    case Ending::kLost:
      break;
  }
  if (!done) Say(fmt::format("{}: {}", entry->id, done.error()));
}

void Worker::PostStatus(const QueueEntry& entry, std::string state, std::string_view what) {
  const RepoConfig* repo = config_.FindRepo(entry.repository);
  if (!repo || repo->token.empty()) return;
  serve::GitHubStatuses client(*http_, config_.github_api, repo->token);
  Status posted = client.Post(repo->name, entry.after,
                              serve::EntryCommitStatus(entry, std::move(state), what, config_.url));
  if (!posted) Say(fmt::format("commit status for {}: {}", entry.after, posted.error()));
}

Status Worker::Record(const QueueEntry& entry, std::string_view status, const std::string& reason) {
  json record = serve::EntryRecord(entry, status);
  record["finished"] = Now();
  if (!reason.empty()) record["reason"] = reason;
  auto put = records_->store().PutIfAbsent(Records::BuildName(entry.id, "report.json"),
                                           record.dump(2) + "\n", "application/json");
  if (!put) return Fail(put.error());
  const std::string what =
      reason.empty() ? std::string(status) : fmt::format("{}: {}", status, reason);
  Say(fmt::format("{} {}", entry.id, what));
  if (*put) PostStatus(entry, serve::CommitState(status), what);
  return {};
}

Status Worker::MarkAbandoned(const std::string& id, int attempt, const std::string& reason) {
  json mark = {{"reason", reason}, {"by", name_}, {"at", Now()}};
  auto put = records_->store().Put(Records::RunName(id, attempt, "abandoned.json"), mark.dump(),
                                   "application/json");
  if (!put) return Fail(put.error());
  return {};
}

Result<Worker::Ending> Worker::Handle(const QueueEntry& entry, Heartbeat& heartbeat) {
  auto recorded = records_->store().Stat(Records::BuildName(entry.id, "report.json"));
  if (!recorded) return Fail(recorded.error());
  if (*recorded) return Ending::kDone;  // an earlier attempt's delete did not reach the queue

  json claim = {{"worker", name_}, {"at", Now()}};
  auto attempt = records_->ClaimAttempt(entry.id, claim.dump());
  if (!attempt) return Fail(attempt.error());
  if (*attempt > 1) {
    Status marked =
        MarkAbandoned(entry.id, *attempt - 1,
                      fmt::format("its worker stopped before the build ended; attempt {} "
                                  "builds it again",
                                  *attempt));
    if (!marked) return Fail(marked.error());
  }

  auto cancel = records_->CancelRequest(entry.id);
  if (!cancel) return Fail(cancel.error());
  if (*cancel) {
    if (auto put = Record(entry, "cancelled", **cancel); !put) return Fail(put.error());
    return Ending::kDone;
  }

  auto head = records_->Head(entry.project, entry.branch);
  if (!head) return Fail(head.error());
  if (*head > entry.number) {
    std::string newer = BuildId(entry.project, entry.branch, std::to_string(*head));
    if (auto put = Record(entry, "skipped", "superseded by " + newer); !put)
      return Fail(put.error());
    return Ending::kDone;
  }
  const RepoConfig* repo = config_.FindRepo(entry.repository);
  if (!repo) {
    auto put = Record(
        entry, "error",
        fmt::format("repository {} is not configured on worker {}", entry.repository, name_));
    if (!put) return Fail(put.error());
    return Ending::kDone;
  }
  // Workers on one machine may share the state directory, and so the mirror: one at a time.
  const std::string mirror_dir =
      config_.state_dir + "/mirrors/" + SanitizeIdPart(repo->name) + ".git";
  auto mirror_lock = LockFile(mirror_dir + ".lock");
  if (!mirror_lock) return Fail(mirror_lock.error());
  auto mirror = serve::GitMirror::Open(mirror_dir, repo->clone_url);
  if (!mirror) return Fail(mirror.error());
  if (auto fetched = mirror->Fetch(repo->token); !fetched) return Fail(fetched.error());
  // A rerun builds its commit again on purpose, wherever its branch is now.
  if (entry.rerun_of.empty() && entry.ref.starts_with("refs/heads/")) {
    auto tip = mirror->RefCommit(entry.ref);
    if (!tip) return Fail(tip.error());
    if (!tip->empty() && *tip != entry.after) {
      auto put =
          Record(entry, "skipped",
                 fmt::format("superseded: {} has moved on to {}", entry.branch, tip->substr(0, 7)));
      if (!put) return Fail(put.error());
      return Ending::kDone;
    }
  }
  const std::string run = fmt::format("{}.{}", entry.id, *attempt);
  const std::string run_dir = config_.state_dir + "/runs/" + run;
  const std::string worktree = config_.state_dir + "/worktrees/" + run;
  std::error_code ec;
  stdfs::remove_all(run_dir, ec);
  auto job = serve::PrepareJob(*mirror, entry, *repo, worktree, run_dir,
                               [&] { return Stopping() || heartbeat.lost(); });
  mirror_lock->reset();
  Result<Ending> ending;
  if (!job) {
    if (Stopping() || heartbeat.lost()) {
      (void)MarkAbandoned(entry.id, *attempt, "the worker stopped while preparing the build");
      ending = Stopping() ? Ending::kRelease : Ending::kLost;
    } else if (auto put = Record(entry, "error", "preparing the build failed: " + job.error());
               !put) {
      ending = std::unexpected(put.error());
    } else {
      ending = Ending::kDone;
    }
  } else if (auto written = serve::WriteBuildJob(run_dir + "/job.json", *job); !written) {
    ending = std::unexpected(written.error());
  } else {
    ending = RunJob(entry, *attempt, run_dir, worktree, heartbeat);
  }
  (void)serve::RemoveWorktree(worktree);
  stdfs::remove_all(run_dir, ec);
  return ending;
}

Result<Worker::Ending> Worker::RunJob(const QueueEntry& entry, int attempt,
                                      const std::string& run_dir, const std::string& worktree,
                                      Heartbeat& heartbeat) {
  std::string console_path = run_dir + "/console.log";
  UniqueFd console(::open(console_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ProcessSpec spec;
  spec.argv = {self_exe_, "__build", run_dir + "/job.json"};
  spec.env = child_env_;
  spec.cwd = worktree;
  spec.kill_grace = serve::kBuildChildGrace;
  auto process = processes_->Start(spec);
  if (!process) {
    if (auto put = Record(entry, "error", "cannot start the build: " + process.error()); !put) {
      return Fail(put.error());
    }
    return Ending::kDone;
  }
  Say(fmt::format("{} started (attempt {})", entry.id, attempt));
  PostStatus(entry, "pending", "running");
  LogShipper shipper(*records_, run_dir + "/builds/" + entry.id, entry.id, attempt);
  int exit_code = 0;
  std::string cancelled;
  // Asked for from the build page: the build is stopped, and what it recorded published.
  std::atomic<bool> cancel_asked{false};
  bool cancel_sent = false;
  {
    PeriodicThread ship(Clock::now() + config_.log_interval,
                        [&, last_error = std::string()]() mutable {
                          Status shipped = shipper.Ship();
                          // Said once per failure, not at every interval while the store is away.
                          if (!shipped && shipped.error() != last_error) {
                            Say("shipping logs: " + shipped.error());
                          }
                          last_error = shipped ? "" : shipped.error();
                          if (!cancel_asked.load()) {
                            auto asked = records_->CancelRequest(entry.id);
                            cancel_asked = asked && asked->has_value();
                          }
                          return std::optional(Clock::now() + config_.log_interval);
                        });
    for (bool done = false; !done;) {
      for (const ProcessEvent& event : processes_->Wait(Clock::now() + std::chrono::seconds(1))) {
        if (event.type == ProcessEvent::Type::kOutput && console.valid()) {
          (void)WriteAll(console.get(), event.data);
        } else if (event.type == ProcessEvent::Type::kSignal) {
          OnSignal();
        } else if (event.type == ProcessEvent::Type::kDone && event.id == *process) {
          exit_code = event.exit_code;
          done = true;
        }
      }
      if (processes_->received_signal() != 0 && !stopping_) OnSignal();
      if (done || !cancelled.empty()) continue;
      if (cancel_asked.load() && !cancel_sent) {
        Say(fmt::format("{} cancelled from the build page", entry.id));
        processes_->Interrupt(*process, SIGTERM);
        cancel_sent = true;
      }
      if (stopping_ && Clock::now() >= stop_deadline_) {
        cancelled = "the worker stopped and its stop_grace passed";
      } else if (heartbeat.lost()) {
        cancelled =
            "the worker lost its message (the queue was out of reach for a whole "
            "visibility timeout)";
      }
      if (!cancelled.empty()) processes_->Interrupt(*process, SIGTERM);
    }
  }
  if (Status shipped = shipper.Ship(); !shipped) return Fail(shipped.error());
  if (!cancelled.empty()) {
    if (auto marked = MarkAbandoned(entry.id, attempt, cancelled); !marked) {
      return Fail(marked.error());
    }
    Say(fmt::format("{} abandoned: {}", entry.id, cancelled));
    return stopping_ ? Ending::kRelease : Ending::kLost;
  }
  const std::string report_path = run_dir + "/builds/" + entry.id + "/report.json";
  std::error_code ec;
  if (!stdfs::exists(report_path, ec)) {
    auto put = Record(entry, "error", serve::NoRecordReason(exit_code, console_path));
    if (!put) return Fail(put.error());
    return Ending::kDone;
  }
  auto report = ReadFile(report_path);
  if (!report) return Fail(report.error());
  auto published = shipper.Publish(*report);
  if (!published) return Fail(published.error());
  if (*published) {
    json parsed = json::parse(*report, nullptr, /*allow_exceptions=*/false);
    std::string status = parsed.is_object() && parsed["status"].is_string()
                             ? parsed["status"].get<std::string>()
                             : "error";
    PostStatus(entry, serve::CommitState(status), status);
  }
  Say(fmt::format("{} {} (attempt {})", entry.id,
                  *published ? "recorded" : "already recorded by another attempt", attempt));
  return Ending::kDone;
}

}  // namespace

int RunWorker(const ServeConfig& config, const std::string& self_exe) {
  Worker worker(config, self_exe);
  return worker.Run();
}

}  // namespace runner::worker
