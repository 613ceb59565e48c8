#include "runner/serve/server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "runner/aws/http.h"
#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/crypto.h"
#include "runner/environment.h"
#include "runner/fs.h"
#include "runner/glob.h"
#include "runner/process.h"
#include "runner/queue/message_queue.h"
#include "runner/serve/build_job.h"
#include "runner/serve/build_queue.h"
#include "runner/serve/git_mirror.h"
#include "runner/serve/github_status.h"
#include "runner/serve/http_server.h"
#include "runner/serve/log_follower.h"
#include "runner/serve/pages.h"
#include "runner/serve/records_view.h"
#include "runner/serve/webhook.h"
#include "runner/sha256.h"
#include "runner/worker/records.h"

namespace runner::serve {

namespace {

namespace stdfs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kBuildsShown = 200;

Response Text(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  if (!response.body.empty() && response.body.back() != '\n') response.body += '\n';
  return response;
}

Response Json(int status, const json& body) {
  Response response;
  response.status = status;
  response.content_type = "application/json";
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return response;
}

Response Asset(std::string_view content_type, std::string_view body) {
  Response response;
  response.content_type = std::string(content_type);
  response.body = std::string(body);
  response.headers.emplace_back("Content-Security-Policy", std::string(ContentSecurityPolicy()));
  return response;
}

Response Html(std::string body) { return Asset("text/html; charset=utf-8", body); }

// A build id or step id from a URL: what SanitizeIdPart and the step id rule allow, so that it
// names a file below the state directory and nothing else.
bool SafeName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.size() <= 255 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string_view::npos;
}

std::optional<json> ReadJsonFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return std::nullopt;
  json value = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// The status a queue entry shows before (or without) a record of its own.
std::string EntryStatus(const QueueEntry& entry) {
  switch (entry.state) {
    case QueueEntry::State::kFinished:
      return entry.result;
    case QueueEntry::State::kRunning:
      return "running";
    default:
      return std::string(StateName(entry.state));
  }
}

// Whether `authorization` ("Bearer TOKEN") holds `token`, compared in constant time.
bool HasToken(std::string_view authorization, const std::string& token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (token.empty() || !authorization.starts_with(kBearer)) return false;
  std::string_view given = authorization.substr(kBearer.size());
  return given.size() == token.size() &&
         Crypto().CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

class BuildServer {
 public:
  BuildServer(const ServeConfig& config, std::string self_exe)
      : config_(config), self_exe_(std::move(self_exe)), http_client_(aws::MakeCurlHttpClient()) {}

  int Run();

 private:
  struct Running {
    QueueEntry entry;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
    std::string cancel_reason;
    std::string worktree;
    std::string job_file;
    std::thread preparing;  // joined once it has reported
    int process = -1;       // once started
    UniqueFd console;       // STATE/console/ID.log
  };
  // What other threads hand the main thread.
  struct Command {
    enum class Type { kPrepared, kPrepareFailed, kCancel } type;
    std::string id;
    std::string reason;
  };
  struct StatusUpdate {
    const RepoConfig* repo;
    std::string sha;
    CommitStatus status;
  };

  Status Start();
  void Loop();
  void StartQueued();
  void Prepare(Running* build);
  void Handle(const Command& command);
  void Launch(Running& build);
  void Finished(const std::string& id, int exit_code);
  void End(const std::string& id, std::string result, std::string reason);
  void Cancel(Running& build, const std::string& reason);
  void Post(const Command& command);
  void SendStatus(const QueueEntry& entry, std::string state, std::string description);
  void StatusLoop();

  Response OnHook(const Request& request);
  Response OnPush(const RepoConfig& repo, const std::string& delivery, const std::string& body);
  // With `queue:`: the build goes to the shared queue for the workers.
  Response SendToQueue(const NewBuild& build);
  Status SendEntry(const QueueEntry& entry);
  Response RerunOnQueue(const std::string& id);
  Response CancelOnQueue(const std::string& id);
  // Marks a delivery that queues nothing (a ping, a deletion); false when seen before.
  Result<bool> MarkDelivery(const std::string& delivery);
  Response OnBuildsList(const Request& request);
  Response OnBuildGet(const Request& request);
  Response OnBuildPost(const Request& request);
  void OnLogEvents(const Request& request, std::shared_ptr<Stream> stream);
  std::optional<json> BuildJson(const std::string& id) const;
  json BuildJson(const QueueEntry& entry) const;
  json BuildsJson() const;
  bool StepFinished(const std::string& id, const std::string& step) const;
  std::string BuildUrl(const std::string& id) const { return config_.url + "/builds/" + id; }

  const ServeConfig& config_;
  std::string self_exe_;
  std::unique_ptr<aws::HttpClient> http_client_;
  std::unique_ptr<BuildQueue> queue_;
  // With `queue:`: the shared queue and the records of every worker, which the pages show.
  std::unique_ptr<queue::MessageQueue> shared_queue_;
  std::unique_ptr<worker::Records> records_;
  std::unique_ptr<RecordsView> records_view_;
  std::unique_ptr<ProcessRunner> processes_;
  Server http_;
  LogFollower follower_;
  std::vector<std::string> child_env_;

  // The main thread's: the builds being prepared or run, by id.
  std::map<std::string, std::unique_ptr<Running>> running_;
  std::map<int, std::string> by_process_;
  bool stopping_ = false;
  bool cancelled_all_ = false;
  Clock::time_point stop_deadline_;

  std::mutex mutex_;  // guards commands_
  std::vector<Command> commands_;

  std::mutex mirrors_mutex_;  // one fetch per repository at a time
  std::map<std::string, std::unique_ptr<std::mutex>> mirror_locks_;

  std::mutex status_mutex_;
  std::condition_variable status_ready_;
  std::deque<StatusUpdate> statuses_;
  bool status_stop_ = false;
  std::thread status_thread_;
};

Status BuildServer::Start() {
  for (const char* sub : {"/queue", "/mirrors", "/worktrees", "/jobs", "/console", "/builds"}) {
    std::error_code ec;
    stdfs::create_directories(config_.state_dir + sub, ec);
    if (ec)
      return Fail(fmt::format("cannot create {}{}: {}", config_.state_dir, sub, ec.message()));
  }
  auto queue = BuildQueue::Open(config_.state_dir + "/queue");
  if (!queue) return Fail(queue.error());
  queue_ = std::move(*queue);
  if (!config_.queue.empty()) {
    const Environment environment = CurrentEnvironment();
    auto records = worker::OpenRecords(config_.records, environment);
    if (!records) return Fail(records.error());
    records_ = std::move(*records);
    records_view_ =
        std::make_unique<RecordsView>(*records_, config_.state_dir + "/records-cache", follower_);
    queue::MessageQueueOptions queue_options;
    queue_options.env = environment;
    queue_options.max_receives = config_.max_receives;
    auto shared = queue::OpenMessageQueue(config_.queue, std::move(queue_options));
    if (!shared) return Fail(shared.error());
    shared_queue_ = std::move(*shared);
  }
  for (const QueueEntry& entry : queue_->abandoned_at_open()) {
    SendStatus(entry, "error", "abandoned: the server stopped while it ran");
  }
  // Nothing runs yet: what is left in these is a stopped server's.
  std::error_code ec;
  for (const auto& tree : stdfs::directory_iterator(config_.state_dir + "/worktrees", ec)) {
    if (auto removed = RemoveWorktree(tree.path().string()); !removed) {
      std::fprintf(stderr, "runner serve: warning: %s\n", removed.error().c_str());
    }
  }
  for (const auto& job : stdfs::directory_iterator(config_.state_dir + "/jobs", ec)) {
    stdfs::remove(job.path(), ec);
  }

  child_env_ = BuildEnvironment(config_, CurrentEnvironment());

  http_.Handle("POST", "/hooks/github", [this](const Request& r) { return OnHook(r); });
  http_.Handle("GET", "/", [this](const Request& r) { return OnBuildsList(r); });
  http_.Handle("GET", "/builds.json", [this](const Request&) {
    json body = {{"builds", BuildsJson()},
                 {"now", FormatTimestamp(std::chrono::system_clock::now())}};
    // With `queue:`, how many builds wait for a worker and how many workers hold one.
    if (shared_queue_) {
      if (auto depth = shared_queue_->Depth()) {
        body["queue"] = {{"waiting", depth->visible}, {"taken", depth->in_flight}};
      }
    }
    return Json(200, body);
  });
  http_.Handle("GET", "/static/app.js", [](const Request&) {
    return Asset("text/javascript; charset=utf-8", PageScript());
  });
  http_.Handle("GET", "/static/app.css",
               [](const Request&) { return Asset("text/css; charset=utf-8", PageStyle()); });
  http_.Handle("GET", "/builds/", [this](const Request& r) { return OnBuildGet(r); });
  http_.Handle("POST", "/builds/", [this](const Request& r) { return OnBuildPost(r); });
  http_.HandleStream("GET", "/events/",
                     [this](const Request& r, std::shared_ptr<Stream> s) { OnLogEvents(r, s); });
  ServerOptions options;
  options.listen = config_.listen;
  if (auto started = http_.Start(options); !started) return started;
  status_thread_ = std::thread([this] { StatusLoop(); });
  return {};
}

int BuildServer::Run() {
  processes_ = MakePosixProcessRunner(/*with_watchdog=*/true);
  if (auto started = Start(); !started) {
    std::fprintf(stderr, "runner: error: %s\n", started.error().c_str());
    return 2;
  }
  std::printf("runner serve: listening on %s (port %u), state in %s\n", config_.listen.c_str(),
              http_.port(), config_.state_dir.c_str());
  if (shared_queue_) {
    std::printf("runner serve: builds go to %s, records in %s\n", shared_queue_->Describe().c_str(),
                records_->store().url().c_str());
  }
  std::fflush(stdout);
  Loop();
  http_.Stop();
  records_view_.reset();
  {
    std::lock_guard lock(status_mutex_);
    status_stop_ = true;
  }
  status_ready_.notify_all();
  status_thread_.join();
  std::printf("runner serve: stopped\n");
  return 0;
}

void BuildServer::Loop() {
  for (;;) {
    std::vector<Command> commands;
    {
      std::lock_guard lock(mutex_);
      commands.swap(commands_);
    }
    for (const Command& command : commands) Handle(command);
    // After the commands and the events, which may have ended builds.
    if (!stopping_) StartQueued();
    if (stopping_ && running_.empty()) return;

    Clock::time_point now = Clock::now();
    if (stopping_ && !cancelled_all_ && now >= stop_deadline_) {
      cancelled_all_ = true;
      for (auto& [id, build] : running_) {
        Cancel(*build, "cancelled: the server stopped and its stop_grace passed");
      }
    }
    Clock::time_point wake = now + std::chrono::minutes(1);
    if (stopping_ && !cancelled_all_) wake = std::min(wake, stop_deadline_);
    for (const ProcessEvent& event : processes_->Wait(wake)) {
      switch (event.type) {
        case ProcessEvent::Type::kOutput:
          if (auto it = by_process_.find(event.id); it != by_process_.end()) {
            Running& build = *running_.at(it->second);
            if (build.console.valid()) (void)WriteAll(build.console.get(), event.data);
          }
          break;
        case ProcessEvent::Type::kDone:
          if (auto it = by_process_.find(event.id); it != by_process_.end()) {
            std::string id = it->second;
            by_process_.erase(it);
            Finished(id, event.exit_code);
          }
          break;
        case ProcessEvent::Type::kSignal:
          if (!stopping_) {
            stopping_ = true;
            stop_deadline_ = Clock::now() + config_.stop_grace;
            http_.StopAccepting();
            std::printf("runner serve: %s: taking no more hooks; %zu builds running, given %s\n",
                        DescribeSignal(event.signal).c_str(), running_.size(),
                        FormatDuration(config_.stop_grace).c_str());
            std::fflush(stdout);
          } else if (!cancelled_all_) {
            stop_deadline_ = Clock::now();  // a second signal: cancel now
          }
          break;
      }
    }
  }
}

void BuildServer::StartQueued() {
  while (running_.size() < static_cast<size_t>(config_.jobs)) {
    auto next = queue_->StartNext();
    if (!next) {
      std::fprintf(stderr, "runner serve: error: %s\n", next.error().c_str());
      return;
    }
    if (!*next) return;
    auto build = std::make_unique<Running>();
    build->entry = std::move(**next);
    Running* raw = build.get();
    running_.emplace(raw->entry.id, std::move(build));
    raw->preparing = std::thread([this, raw] { Prepare(raw); });
  }
}

// On its own thread: fetch, resolve, check out, and write the job. Reports to the main thread.
void BuildServer::Prepare(Running* build) {
  const QueueEntry& entry = build->entry;
  auto fail = [&](std::string reason) {
    Post({Command::Type::kPrepareFailed, entry.id, std::move(reason)});
  };
  const RepoConfig* repo = config_.FindRepo(entry.repository);
  if (!repo) return fail(fmt::format("repository {} is no longer configured", entry.repository));
  std::mutex* lock;
  {
    std::lock_guard guard(mirrors_mutex_);
    auto& slot = mirror_locks_[repo->name];
    if (!slot) slot = std::make_unique<std::mutex>();
    lock = slot.get();
  }
  std::lock_guard guard(*lock);
  std::string mirror_dir = config_.state_dir + "/mirrors/" + SanitizeIdPart(repo->name) + ".git";
  auto mirror = GitMirror::Open(mirror_dir, repo->clone_url);
  if (!mirror) return fail(mirror.error());
  auto cancelled = build->cancelled;
  build->worktree = config_.state_dir + "/worktrees/" + entry.id;
  auto job = PrepareJob(*mirror, entry, *repo, build->worktree, config_.state_dir,
                        [cancelled] { return cancelled->load(); });
  if (!job) return fail(job.error());
  build->job_file = config_.state_dir + "/jobs/" + entry.id + ".json";
  if (auto written = WriteBuildJob(build->job_file, *job); !written) return fail(written.error());
  Post({Command::Type::kPrepared, entry.id, ""});
}

void BuildServer::Post(const Command& command) {
  {
    std::lock_guard lock(mutex_);
    commands_.push_back(command);
  }
  processes_->Wake();
}

void BuildServer::Handle(const Command& command) {
  auto it = running_.find(command.id);
  if (command.type == Command::Type::kCancel) {
    if (it != running_.end()) {
      Cancel(*it->second, command.reason);
    } else if (queue_->Skip(command.id, command.reason)) {
      if (auto entry = queue_->Find(command.id)) SendStatus(*entry, "error", command.reason);
    }
    return;
  }
  if (it == running_.end()) return;
  Running& build = *it->second;
  if (build.preparing.joinable()) build.preparing.join();
  if (command.type == Command::Type::kPrepareFailed) {
    bool cancelled = build.cancelled->load();
    End(command.id, cancelled ? "cancelled" : "error",
        cancelled ? build.cancel_reason : "preparing the build failed: " + command.reason);
    return;
  }
  if (build.cancelled->load() || stopping_) {
    End(command.id, "cancelled",
        build.cancelled->load() ? build.cancel_reason : "the server stopped before it started");
    return;
  }
  Launch(build);
}

void BuildServer::Launch(Running& build) {
  const std::string& id = build.entry.id;
  std::string console = config_.state_dir + "/console/" + id + ".log";
  build.console.reset(::open(console.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ProcessSpec spec;
  spec.argv = {self_exe_, "__build", build.job_file};
  spec.env = child_env_;
  spec.cwd = build.worktree;
  spec.kill_grace = kBuildChildGrace;
  auto process = processes_->Start(spec);
  if (!process) {
    End(id, "error", "cannot start the build: " + process.error());
    return;
  }
  build.process = *process;
  by_process_[*process] = id;
  SendStatus(build.entry, "pending", "running");
}

void BuildServer::Finished(const std::string& id, int exit_code) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  std::optional<json> report = ReadJsonFile(config_.state_dir + "/builds/" + id + "/report.json");
  std::string result;
  std::string reason;
  if (report && (*report)["status"].is_string()) {
    result = (*report)["status"].get<std::string>();
    if (result == "timed_out") result = "failed";
  } else {
    result = "error";
    reason = NoRecordReason(exit_code, config_.state_dir + "/console/" + id + ".log");
  }
  End(id, result, reason);
}

void BuildServer::End(const std::string& id, std::string result, std::string reason) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  Running& build = *it->second;
  if (build.preparing.joinable()) build.preparing.join();
  if (!build.worktree.empty()) (void)RemoveWorktree(build.worktree);
  if (!build.job_file.empty()) ::unlink(build.job_file.c_str());
  if (auto finished = queue_->Finish(id, result, reason); !finished) {
    std::fprintf(stderr, "runner serve: error: %s\n", finished.error().c_str());
  }
  SendStatus(build.entry, CommitState(result), reason.empty() ? result : result + ": " + reason);
  std::printf("runner serve: %s %s\n", id.c_str(), result.c_str());
  std::fflush(stdout);
  running_.erase(it);
  follower_.Wake();  // its logs are complete
}

void BuildServer::Cancel(Running& build, const std::string& reason) {
  if (build.cancelled->exchange(true)) return;
  build.cancel_reason = reason;
  if (build.process >= 0) processes_->Interrupt(build.process, SIGTERM);
}

void BuildServer::SendStatus(const QueueEntry& entry, std::string state, std::string description) {
  const RepoConfig* repo = config_.FindRepo(entry.repository);
  if (!repo || repo->token.empty() || entry.after.empty()) return;
  CommitStatus status = EntryCommitStatus(entry, std::move(state), description, config_.url);
  {
    std::lock_guard lock(status_mutex_);
    statuses_.push_back({repo, entry.after, std::move(status)});
  }
  status_ready_.notify_one();
}

// Posts the statuses in order, each with its retries, so that no hook and no build waits for
// GitHub. What is left at stop is still sent.
void BuildServer::StatusLoop() {
  for (;;) {
    StatusUpdate update;
    {
      std::unique_lock lock(status_mutex_);
      status_ready_.wait(lock, [&] { return status_stop_ || !statuses_.empty(); });
      if (statuses_.empty()) return;
      update = std::move(statuses_.front());
      statuses_.pop_front();
    }
    GitHubStatuses client(*http_client_, config_.github_api, update.repo->token);
    if (auto posted = client.Post(update.repo->name, update.sha, update.status); !posted) {
      std::fprintf(stderr, "runner serve: commit status for %s: %s\n", update.sha.c_str(),
                   posted.error().c_str());
    }
  }
}

Response BuildServer::OnHook(const Request& request) {
  std::string event = request.Header("x-github-event");
  std::string delivery = request.Header("x-github-delivery");
  if (event.empty() || delivery.empty()) {
    return Text(400, "not a GitHub delivery: X-GitHub-Event and X-GitHub-Delivery are required");
  }
  auto body = PayloadJson(request.Header("content-type"), request.body);
  if (!body) return Text(415, body.error());
  auto name = DeliveryRepository(*body);
  if (!name) return Text(400, name.error());
  const RepoConfig* repo = config_.FindRepo(*name);
  if (!repo) {
    return Text(202, fmt::format("ignored: repository '{}' is not configured here", *name));
  }
  SignatureCheck check =
      CheckSignature(request.body, repo->secret, request.Header("x-hub-signature-256"),
                     !request.Header("x-hub-signature").empty());
  if (check != SignatureCheck::kOk) {
    return Text(401, fmt::format("signature refused: {}", DescribeSignatureCheck(check)));
  }
  if (event == "ping") {
    if (auto marked = MarkDelivery(delivery); !marked) return Text(500, marked.error());
    return Text(200, "pong");
  }
  if (event != "push") return Text(202, fmt::format("ignored: '{}' events are not built", event));
  return OnPush(*repo, delivery, *body);
}

Response BuildServer::OnPush(const RepoConfig& repo, const std::string& delivery,
                             const std::string& body) {
  auto push = ParsePushEvent(body);
  if (!push) return Text(400, push.error());
  if (push->deleted || IsZeroCommit(push->after)) {
    auto marked = MarkDelivery(delivery);
    if (!marked) return Text(500, marked.error());
    return Text(202, fmt::format("ignored: {} was deleted", push->ref));
  }
  NewBuild build;
  build.repository = repo.name;
  build.project = repo.project;
  build.branch = push->name;
  build.ref = push->ref;
  build.event = push->tag ? "tag" : "push";
  build.before = push->before;
  build.after = push->after;
  build.default_branch = push->default_branch;
  build.delivery = delivery;
  build.trigger = "webhook";
  if (shared_queue_) return SendToQueue(build);
  auto queued = queue_->Enqueue(build);
  if (!queued) return Text(500, queued.error());
  if (queued->duplicate) {
    return Json(
        200,
        {{"duplicate", true}, {"build", queued->entry.id}, {"url", BuildUrl(queued->entry.id)}});
  }
  const QueueEntry& entry = queued->entry;
  SendStatus(entry, "pending", "queued");
  for (const QueueEntry& skipped : queued->superseded) {
    SendStatus(skipped, "error", "skipped: superseded by " + entry.id);
  }
  bool cancel = std::ranges::any_of(
      repo.cancel_running, [&](const std::string& glob) { return GlobMatch(glob, entry.branch); });
  if (cancel) {
    for (const QueueEntry& old : queued->running_same_branch) {
      Post({Command::Type::kCancel, old.id, "cancelled: superseded by " + entry.id});
    }
  }
  processes_->Wake();
  return Json(202, {{"id", entry.id}, {"url", BuildUrl(entry.id)}});
}

Result<bool> BuildServer::MarkDelivery(const std::string& delivery) {
  if (!records_) return queue_->MarkDelivery(delivery);
  if (Status valid = CheckDelivery(delivery); !valid) return Fail(valid.error());
  return records_->MarkDelivery(delivery, R"({"queued": false})");
}

// The number is claimed, then the delivery marked, the build recorded as queued and its
// branch's head raised (so that a worker holding an older build of the branch skips it), then
// the message sent, and the mark updated to say so. A crash between the mark and the update
// leaves a mark that is not `queued`: a redelivery sends the recorded build again (the queue
// drops a second copy sent within five minutes, the workers one already recorded).
Response BuildServer::SendToQueue(const NewBuild& build) {
  if (Status valid = CheckNewBuild(build); !valid) return Text(400, valid.error());
  auto seen = records_->Delivery(build.delivery);
  if (!seen) return Text(500, seen.error());
  QueueEntry entry;
  if (*seen) {
    json mark = json::parse(**seen, nullptr, /*allow_exceptions=*/false);
    std::string id =
        mark.is_object() && mark["id"].is_string() ? mark["id"].get<std::string>() : std::string();
    if (id.empty() || mark["queued"] == true) {
      return Json(200,
                  {{"duplicate", true}, {"build", id}, {"url", id.empty() ? "" : BuildUrl(id)}});
    }
    auto found = FindEntry(*records_, id);
    if (!found) return Text(500, found.error());
    if (!*found)
      return Text(500, fmt::format("delivery {} names build {}, which has no entry "
                                   "in the records",
                                   build.delivery, id));
    entry = std::move(**found);
  } else {
    auto number = records_->ClaimNumber(build.project, build.branch);
    if (!number) return Text(500, number.error());
    entry = EntryOf(build);
    entry.number = *number;
    entry.seq = *number;
    entry.id = BuildId(build.project, build.branch, std::to_string(entry.number));
    entry.enqueued_at = FormatTimestamp(std::chrono::system_clock::now());
    json mark = {{"id", entry.id}, {"queued", false}};
    auto marked = records_->MarkDelivery(build.delivery, mark.dump());
    if (!marked) return Text(500, marked.error());
    if (!*marked) return Json(200, {{"duplicate", true}});  // a concurrent delivery of it
    if (Status put = PutEntry(*records_, entry); !put) return Text(500, put.error());
    if (auto head = records_->SetHead(entry.project, entry.branch, entry.number); !head) {
      return Text(500, head.error());
    }
  }
  if (Status sent = SendEntry(entry); !sent) return Text(500, sent.error());
  json mark = {{"id", entry.id}, {"queued", true}};
  if (auto updated = records_->UpdateDelivery(entry.delivery, mark.dump()); !updated) {
    std::fprintf(stderr, "runner serve: %s\n", updated.error().c_str());
  }
  SendStatus(entry, "pending", "queued");
  return Json(202, {{"id", entry.id}, {"url", BuildUrl(entry.id)}});
}

Status BuildServer::SendEntry(const QueueEntry& entry) {
  // One group per repository and branch, so that a branch builds one at a time, in order; a
  // digest, since SQS allows only 128 printable ASCII characters.
  const std::string group = Sha256Hex(entry.repository + "\n" + entry.ref);
  if (auto sent = shared_queue_->Send(EntryToJson(entry), group, entry.delivery); !sent) {
    return Fail(sent.error());
  }
  return {};
}

// A new build of an ended build's commit, numbered and recorded as a push's is, but the
// branch's head stays: a rerun is no push, and what later pushes queued still runs.
Response BuildServer::RerunOnQueue(const std::string& id) {
  auto original = FindEntry(*records_, id);
  if (!original) return Text(500, original.error());
  if (!*original) return Text(404, fmt::format("no build {}", id));
  auto ended = records_->store().Stat(worker::Records::BuildName(id, "report.json"));
  if (!ended) return Text(500, ended.error());
  if (!*ended) return Text(409, fmt::format("cannot rerun build {}: it has not ended", id));
  QueueEntry entry = RerunOf(**original);
  auto number = records_->ClaimNumber(entry.project, entry.branch);
  if (!number) return Text(500, number.error());
  entry.number = *number;
  entry.seq = *number;
  entry.id = BuildId(entry.project, entry.branch, std::to_string(entry.number));
  entry.delivery = RerunDelivery(id, entry.number);
  entry.enqueued_at = FormatTimestamp(std::chrono::system_clock::now());
  if (Status put = PutEntry(*records_, entry); !put) return Text(500, put.error());
  if (Status sent = SendEntry(entry); !sent) return Text(500, sent.error());
  SendStatus(entry, "pending", "queued (rerun of " + id + ")");
  return Json(202, {{"id", entry.id}, {"url", BuildUrl(entry.id)}});
}

// A mark in the records: the worker that takes the build records it cancelled, the one
// building it stops it (within a log_interval) and publishes what it recorded.
Response BuildServer::CancelOnQueue(const std::string& id) {
  auto entry = records_->store().Stat(EntryName(id));
  if (!entry) return Text(500, entry.error());
  if (!*entry) return Text(404, fmt::format("no build {}", id));
  auto ended = records_->store().Stat(worker::Records::BuildName(id, "report.json"));
  if (!ended) return Text(500, ended.error());
  if (*ended) return Text(409, fmt::format("cannot cancel build {}: it has ended", id));
  if (Status asked = records_->RequestCancel(id, "cancelled from the build page"); !asked) {
    return Text(500, asked.error());
  }
  return Json(202, {{"id", id}, {"cancelling", true}});
}

// The builds, newest first, each as its record without the steps.
json BuildServer::BuildsJson() const {
  json rows = json::array();
  if (records_view_) {
    auto builds = records_view_->Builds(kBuildsShown);
    if (!builds) {
      std::fprintf(stderr, "runner serve: %s\n", builds.error().c_str());
      return rows;
    }
    for (json& row : *builds) rows.push_back(std::move(row));
    return rows;
  }
  for (const QueueEntry& entry : queue_->List(kBuildsShown)) {
    json row = BuildJson(entry);
    row.erase("steps");
    rows.push_back(std::move(row));
  }
  return rows;
}

// report.json once written; live.json while it runs; else what the queue knows.
std::optional<json> BuildServer::BuildJson(const std::string& id) const {
  if (records_view_) return records_view_->Build(id);
  std::optional<QueueEntry> entry = queue_->Find(id);
  if (!entry) return std::nullopt;
  return BuildJson(*entry);
}

json BuildServer::BuildJson(const QueueEntry& entry) const {
  std::string dir = config_.state_dir + "/builds/" + entry.id;
  std::optional<json> record = ReadJsonFile(dir + "/report.json");
  if (!record) record = ReadJsonFile(dir + "/live.json");
  if (!record) record = ReadJsonFile(dir + "/report.json");  // written meanwhile
  if (!record) record = EntryRecord(entry, EntryStatus(entry));
  (*record)["repository"] = entry.repository;
  if (!entry.reason.empty()) (*record)["reason"] = entry.reason;
  // The queue has the last word on a build that ended without its record saying so.
  if (entry.state != QueueEntry::State::kRunning && (*record)["status"] == "running") {
    (*record)["status"] = EntryStatus(entry);
  }
  return *record;
}

Response BuildServer::OnBuildsList(const Request& request) {
  if (request.path != "/") return Text(404, "no such page");
  std::vector<json> builds;
  for (json& row : BuildsJson()) builds.push_back(std::move(row));
  return Html(BuildsPage(builds));
}

// GET /builds/ID, /builds/ID.json, /builds/ID/logs/STEP.log
Response BuildServer::OnBuildGet(const Request& request) {
  std::string_view rest =
      std::string_view(request.path).substr(std::string_view("/builds/").size());
  std::string id(rest.substr(0, rest.find('/')));
  std::string_view tail = rest.substr(id.size());
  bool as_json = tail.empty() && id.ends_with(".json");
  if (as_json) id.resize(id.size() - 5);
  if (!SafeName(id)) return Text(404, "no such build");
  if (tail.starts_with("/logs/") && tail.ends_with(".log")) {
    std::string step(tail.substr(6, tail.size() - 10));
    if (!SafeName(step)) return Text(404, "no such log");
    if (records_view_) {
      auto log = records_view_->Log(id, step);
      if (!log) return Text(404, fmt::format("build {} has no log for step '{}'", id, step));
      return Text(200, std::move(*log));
    }
    auto text = ReadFile(config_.state_dir + "/builds/" + id + "/logs/" + step + ".log");
    if (!text) return Text(404, fmt::format("build {} has no log for step '{}'", id, step));
    return Text(200, std::move(*text));
  }
  if (!tail.empty()) return Text(404, "no such page");
  std::optional<json> build = BuildJson(id);
  if (!build) return Text(404, fmt::format("no build {}", id));
  if (as_json) return Json(200, *build);
  return Html(BuildPage(*build));
}

// POST /builds/ID/rerun and /builds/ID/cancel, with the admin token.
Response BuildServer::OnBuildPost(const Request& request) {
  std::string_view rest =
      std::string_view(request.path).substr(std::string_view("/builds/").size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return Text(404, "no such action");
  std::string id(rest.substr(0, slash));
  std::string_view action = rest.substr(slash + 1);
  if (action != "rerun" && action != "cancel") return Text(404, "no such action");
  if (config_.admin_token.empty()) {
    return Text(403, "rerun and cancel are off: the server has no admin_token_env");
  }
  if (!HasToken(request.Header("authorization"), config_.admin_token)) {
    return Text(401, "a valid admin token is needed (Authorization: Bearer TOKEN)");
  }
  if (!SafeName(id)) return Text(404, fmt::format("no build {}", id));
  if (shared_queue_) {
    return action == "rerun" ? RerunOnQueue(id) : CancelOnQueue(id);
  }
  if (!queue_->Find(id)) return Text(404, fmt::format("no build {}", id));
  if (action == "cancel") {
    Post({Command::Type::kCancel, id, "cancelled from the build page"});
    return Json(202, {{"id", id}, {"cancelling", true}});
  }
  auto rerun = queue_->Rerun(id);
  if (!rerun) return Text(409, rerun.error());
  SendStatus(*rerun, "pending", "queued (rerun of " + id + ")");
  processes_->Wake();
  return Json(202, {{"id", rerun->id}, {"url", BuildUrl(rerun->id)}});
}

// Read from the record's files alone while there is one, so that the log streams, which ask
// often, never wait for the queue's lock (held across a delivery's fsyncs).
bool BuildServer::StepFinished(const std::string& id, const std::string& step) const {
  std::string dir = config_.state_dir + "/builds/" + id;
  std::error_code ec;
  if (stdfs::exists(dir + "/report.json", ec)) return true;
  if (std::optional<json> live = ReadJsonFile(dir + "/live.json")) {
    for (const json& entry : (*live)["steps"]) {
      if (entry["id"] == step) return entry["status"] != "running" && entry["status"] != "pending";
    }
    return false;
  }
  // No record (yet): the log is complete only if the build will not run.
  std::optional<QueueEntry> entry = queue_->Find(id);
  return !entry || (entry->state != QueueEntry::State::kQueued &&
                    entry->state != QueueEntry::State::kRunning);
}

// GET /events/ID/STEP: the step's log as server-sent events (FollowLogEvents), resumed at the
// browser's Last-Event-ID.
void BuildServer::OnLogEvents(const Request& request, std::shared_ptr<Stream> stream) {
  std::string_view rest =
      std::string_view(request.path).substr(std::string_view("/events/").size());
  size_t slash = rest.find('/');
  std::string id(rest.substr(0, slash));
  std::string step(slash == std::string_view::npos ? "" : rest.substr(slash + 1));
  if (!SafeName(id) || !SafeName(step)) {
    stream->Write(SseEvent("end", "", "no such log"));
    stream->Close();
    return;
  }
  const bool shared = records_view_ != nullptr;
  FollowLogEvents(
      follower_,
      shared ? records_view_->Follow(id, step)
             : config_.state_dir + "/builds/" + id + "/logs/" + step + ".log",
      ParseLastEventId(request.Header("last-event-id")),
      [this, id, step, shared] {
        return shared ? records_view_->Complete(id, step) : StepFinished(id, step);
      },
      [stream](std::string_view events, bool last) {
        bool open = stream->Write(std::string(events));
        if (last) stream->Close();
        return open;
      });
}

}  // namespace

int RunServe(const ServeConfig& config, const std::string& self_exe) {
  BuildServer server(config, self_exe);
  return server.Run();
}

}  // namespace runner::serve
