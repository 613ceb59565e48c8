#include "runner/deploy/revision_deploy.h"

#include <fmt/format.h>

#include <map>
#include <optional>

#include "runner/backoff.h"

namespace runner::deploy {

namespace {

using Clock = std::chrono::steady_clock;

std::string Progress(const aws::DeploymentOverview& o) {
  int total = o.pending + o.in_progress + o.succeeded + o.failed + o.skipped + o.ready;
  return fmt::format("{} of {} instances succeeded, {} in progress, {} failed, {} pending",
                     o.succeeded, total, o.in_progress, o.failed, o.pending);
}

class Follower {
 public:
  Follower(aws::CodeDeployClient& codedeploy, const RevisionDeployRequest& request)
      : cd_(codedeploy), request_(request) {}

  // Follows `id` to a terminal status; the last GetDeployment answer.
  Result<aws::Deployment> Follow(const std::string& id, bool stoppable) {
    std::optional<Clock::time_point> give_up;
    std::string last_progress;
    for (;;) {
      auto deployment = cd_.GetDeployment(id);
      if (!deployment) return Fail(deployment.error());
      LogInstances(id);
      std::string progress = Progress(deployment->overview);
      if (progress != last_progress) {
        Log(fmt::format("{} {}: {}", id, deployment->status, progress));
        last_progress = progress;
      }
      if (aws::IsTerminal(deployment->status)) return deployment;
      if (stoppable && Cancelled() && !give_up) {
        give_up = Clock::now() + request_.kill_grace;
        Log(fmt::format("cancelled: stopping {} with automatic rollback (followed for at most {})",
                        id, FormatDuration(request_.kill_grace)));
        if (auto stopped = cd_.StopDeployment(id, /*auto_rollback_enabled=*/true); !stopped) {
          Log(fmt::format("cannot stop {}: {}", id, stopped.error()));
        }
      }
      if (give_up && Clock::now() >= *give_up) {
        return Fail(fmt::format("cancelled: {} is still {} after {}", id, deployment->status,
                                FormatDuration(request_.kill_grace)));
      }
      Sleep(give_up.has_value());
    }
  }

  // The first failed lifecycle event seen, as "instance hook: code: message".
  const std::string& failure() const { return failure_; }

 private:
  void Log(std::string_view line) const {
    if (request_.log) request_.log(line);
  }
  bool Cancelled() const { return request_.cancelled && request_.cancelled(); }

  void Sleep(bool steady) const {
    if (request_.sleep) return request_.sleep(request_.poll_interval);
    WaitUnlessCancelled(request_.poll_interval,
                        steady ? std::function<bool()>() : request_.cancelled);
  }

  // Logs each lifecycle event whose status changed, and the log tail of a failed one.
  void LogInstances(const std::string& id) {
    auto ids = cd_.ListDeploymentInstances(id);
    if (!ids) {
      Log(fmt::format("(instances unavailable: {})", ids.error()));
      return;
    }
    if (ids->empty()) return;
    auto instances = cd_.BatchGetDeploymentInstances(id, *ids);
    if (!instances) {
      Log(fmt::format("(instances unavailable: {})", instances.error()));
      return;
    }
    for (const aws::DeploymentInstance& instance : *instances) {
      for (const aws::LifecycleEvent& event : instance.lifecycle_events) {
        std::string& seen = seen_[id + " " + instance.instance_id + " " + event.name];
        if (seen == event.status) continue;
        seen = event.status;
        if (event.status == "Pending") continue;
        Log(fmt::format("  {}  {:<20} {}", instance.instance_id, event.name, event.status));
        if (event.status != "Failed") continue;
        const aws::LifecycleDiagnostics& d = event.diagnostics;
        Log(fmt::format("  {} failed in {}: {}: {}", instance.instance_id,
                        d.script_name.empty() ? event.name : d.script_name, d.error_code,
                        d.message));
        if (!d.log_tail.empty()) {
          Log("  log tail:");
          size_t start = 0;
          while (start < d.log_tail.size()) {
            size_t end = d.log_tail.find('\n', start);
            if (end == std::string::npos) end = d.log_tail.size();
            Log("    " + d.log_tail.substr(start, end - start));
            start = end + 1;
          }
        }
        if (failure_.empty()) {
          failure_ = fmt::format("instance {} hook {}: {}: {}", instance.instance_id, event.name,
                                 d.error_code, d.message);
        }
      }
    }
  }

  aws::CodeDeployClient& cd_;
  const RevisionDeployRequest& request_;
  std::map<std::string, std::string> seen_;
  std::string failure_;
};

}  // namespace

Result<RevisionDeployResult> DeployRevision(aws::CodeDeployClient& codedeploy,
                                            const RevisionDeployRequest& request) {
  aws::CreateDeploymentRequest create;
  create.application = request.application;
  create.group = request.group;
  create.config = request.config;
  create.file_exists_behavior = request.file_exists;
  create.revision = request.revision;
  create.auto_rollback = aws::AutoRollback{};
  create.description = request.description;
  auto id = codedeploy.CreateDeployment(create);
  if (!id) return Fail(id.error());
  if (request.log) {
    request.log(fmt::format("CodeDeploy deployment {} of s3://{}/{} to {}/{}{}", *id,
                            request.revision.bucket, request.revision.key, request.application,
                            request.group,
                            request.config.empty() ? "" : " (" + request.config + ")"));
  }
  Follower follower(codedeploy, request);
  auto deployment = follower.Follow(*id, /*stoppable=*/true);
  if (!deployment) return Fail(deployment.error());
  if (deployment->status == "Succeeded") return RevisionDeployResult{*id, deployment->status};

  std::string why = fmt::format("CodeDeploy deployment {} {}", *id, deployment->status);
  if (!deployment->error_code.empty()) {
    why += fmt::format(": {}: {}", deployment->error_code, deployment->error_message);
  }
  if (!follower.failure().empty()) why += "; " + follower.failure();
  if (!deployment->rollback_deployment_id.empty()) {
    const std::string& rollback = deployment->rollback_deployment_id;
    if (request.log) request.log(fmt::format("automatic rollback: {}", rollback));
    auto rolled = follower.Follow(rollback, /*stoppable=*/false);
    why += rolled ? fmt::format("; rolled back by {}: {}", rollback, rolled->status)
                  : fmt::format("; its rollback {}: {}", rollback, rolled.error());
  }
  return Fail(why);
}

}  // namespace runner::deploy
