#include "runner/deploy/stack_deploy.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <thread>

#include "runner/backoff.h"
#include "runner/build_record.h"
#include "runner/deploy/cfn_lint.h"

namespace runner::deploy {

namespace {

using Clock = std::chrono::steady_clock;

bool InProgress(std::string_view status) { return status.ends_with("_IN_PROGRESS"); }

bool Succeeded(std::string_view status) {
  return status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE" || status == "IMPORT_COMPLETE";
}

class Deployer {
 public:
  Deployer(aws::CloudFormationClient& cloudformation, aws::AutoScalingClient& autoscaling,
           const StackDeployRequest& request)
      : cfn_(cloudformation), asg_(autoscaling), request_(request) {}

  Result<StackDeployResult> Run();

 private:
  void Log(std::string_view line) const {
    if (request_.log) request_.log(line);
  }
  bool Cancelled() const { return request_.cancelled && request_.cancelled(); }
  void Sleep(Duration delay) const;
  Result<std::optional<aws::Stack>> Preflight();
  Status SetCapacity(std::vector<aws::StackParameter>& parameters);
  Result<aws::ChangeSet> AwaitChangeSet(const std::string& name);
  void LogChanges(const aws::ChangeSet& change_set) const;
  Result<aws::Stack> Follow(const std::string& token);
  // Logs this operation's (`token`'s) events not logged yet, oldest first; `show` false only
  // marks what is there as seen.
  void LogNewEvents(const std::string& token, bool show = true);

  aws::CloudFormationClient& cfn_;
  aws::AutoScalingClient& asg_;
  const StackDeployRequest& request_;
  std::set<std::string> seen_events_;
  std::string first_failure_;
};

void Deployer::Sleep(Duration delay) const {
  if (request_.sleep) return request_.sleep(delay);
  WaitUnlessCancelled(delay, request_.cancelled);
}

// The stack as it is once no operation of someone else's runs on it; nullopt when absent.
Result<std::optional<aws::Stack>> Deployer::Preflight() {
  for (;;) {
    auto stack = cfn_.DescribeStacks(request_.stack);
    if (!stack) return Fail(stack.error());
    if (!*stack) return stack;
    const std::string& status = (*stack)->status;
    if (status == "ROLLBACK_COMPLETE") {
      return Fail(fmt::format(
          "stack {} is ROLLBACK_COMPLETE: its creation failed and such a stack cannot be "
          "updated; look at its events, delete it (aws cloudformation delete-stack "
          "--stack-name {}) and deploy again",
          request_.stack, request_.stack));
    }
    if (status == "UPDATE_ROLLBACK_FAILED") {
      return Fail(fmt::format(
          "stack {} is UPDATE_ROLLBACK_FAILED: a rollback could not finish; fix what its events "
          "name, then aws cloudformation continue-update-rollback --stack-name {}, and deploy "
          "again",
          request_.stack, request_.stack));
    }
    if (status.starts_with("DELETE_")) {
      return Fail(
          fmt::format("stack {} is {}: it is being deleted or was; wait, then deploy "
                      "again to create it",
                      request_.stack, status));
    }
    if (!InProgress(status) || status == "REVIEW_IN_PROGRESS") return stack;
    if (Cancelled())
      return Fail(fmt::format("cancelled while stack {} was {}", request_.stack, status));
    Log(fmt::format("stack {} is {}: waiting for that operation to end", request_.stack, status));
    Sleep(request_.poll_interval);
  }
}

// SPEC section 7, "Capacity": each rolling group's MinInstancesInService parameter from the
// group's live DesiredCapacity.
Status Deployer::SetCapacity(std::vector<aws::StackParameter>& parameters) {
  auto groups = RollingUpdateGroups(request_.template_body);
  if (!groups) return Fail(fmt::format("the template: {}", groups.error()));
  for (const RollingGroup& group : *groups) {
    auto resource = cfn_.DescribeStackResource(request_.stack, group.logical_id);
    if (!resource) return Fail(resource.error());
    if (!*resource) {
      Log(fmt::format("capacity: {} is new: {} as the build gives it", group.logical_id,
                      group.min_in_service_parameter));
      continue;
    }
    auto live = asg_.DescribeAutoScalingGroups((*resource)->physical_id);
    if (!live) return Fail(live.error());
    if (!*live) continue;
    int desired = (*live)->desired_capacity;
    int max = (*live)->max_size;
    if (desired > 0 && desired > max - 1) {
      return Fail(fmt::format(
          "capacity: group {} ({}) runs {} instances (DesiredCapacity) with MaxSize {}: a "
          "rolling update must keep MinInstancesInService below MaxSize, so at most {} would "
          "stay in service and {} would be taken out: refused; raise MaxSize or scale in first",
          group.logical_id, (*live)->name, desired, max, max - 1, desired - (max - 1)));
    }
    std::string value = std::to_string(desired);
    auto it =
        std::ranges::find(parameters, group.min_in_service_parameter, &aws::StackParameter::key);
    std::string was = it == parameters.end() ? "not given" : "'" + it->value + "'";
    if (it == parameters.end()) {
      parameters.push_back(aws::StackParameter::Value(group.min_in_service_parameter, value));
    } else {
      *it = aws::StackParameter::Value(group.min_in_service_parameter, value);
    }
    Log(
        fmt::format("capacity: {}={} from group {}'s live DesiredCapacity {} (MaxSize {}; the "
                    "build's value was {})",
                    group.min_in_service_parameter, value, (*live)->name, desired, max, was));
  }
  return {};
}

Result<aws::ChangeSet> Deployer::AwaitChangeSet(const std::string& name) {
  for (;;) {
    auto change_set = cfn_.DescribeChangeSet(request_.stack, name);
    if (!change_set) return Fail(change_set.error());
    const std::string& status = change_set->status;
    if (status == "CREATE_COMPLETE" || status == "FAILED") return change_set;
    Sleep(std::min<Duration>(request_.poll_interval, std::chrono::seconds(2)));
  }
}

void Deployer::LogChanges(const aws::ChangeSet& change_set) const {
  Log(fmt::format("change set {}: {} changes", change_set.name, change_set.changes.size()));
  for (const aws::ResourceChange& change : change_set.changes) {
    std::string replacement;
    if (change.replacement == "True") replacement = "  REPLACEMENT";
    if (change.replacement == "Conditional") replacement = "  may be replaced";
    Log(fmt::format("  {:<7} {} ({}){}", change.action, change.logical_id, change.resource_type,
                    replacement));
  }
}

void Deployer::LogNewEvents(const std::string& token, bool show) {
  auto events = cfn_.DescribeStackEvents(request_.stack, [&](const aws::StackEvent& event) {
    return seen_events_.contains(event.event_id);
  });
  if (!events) {
    Log(fmt::format("(stack events unavailable: {})", events.error()));
    return;
  }
  for (auto it = events->rbegin(); it != events->rend(); ++it) {
    if (!seen_events_.insert(it->event_id).second || !show) continue;
    if (it->client_request_token != token) continue;
    Log(fmt::format("{}  {:<20} {} ({}){}", FormatTimestamp(it->timestamp), it->status,
                    it->logical_id, it->resource_type,
                    it->reason.empty() ? "" : "  " + it->reason));
    if (first_failure_.empty() && it->status.ends_with("_FAILED") && !it->reason.empty()) {
      first_failure_ = fmt::format("{}: {}", it->logical_id, it->reason);
    }
  }
}

// Follows the stack until a terminal status; on a cancel, rolls an update back and follows that
// for at most kill_grace.
Result<aws::Stack> Deployer::Follow(const std::string& token) {
  std::optional<Clock::time_point> give_up;
  for (;;) {
    LogNewEvents(token);
    auto stack = cfn_.DescribeStacks(request_.stack);
    if (!stack) return Fail(stack.error());
    if (!*stack) return Fail(fmt::format("stack {} disappeared during the deploy", request_.stack));
    const std::string& status = (*stack)->status;
    if (!InProgress(status)) return std::move(**stack);
    if (Cancelled() && !give_up) {
      give_up = Clock::now() + request_.kill_grace;
      if (status == "UPDATE_IN_PROGRESS") {
        Log(
            fmt::format("cancelled: cancelling the update of {} (its rollback is followed for "
                        "at most {})",
                        request_.stack, FormatDuration(request_.kill_grace)));
        if (auto cancel = cfn_.CancelUpdateStack(request_.stack); !cancel) {
          Log(fmt::format("cannot cancel the update: {}", cancel.error()));
        }
      } else {
        Log(
            fmt::format("cancelled while stack {} is {}: it cannot be cancelled; following it "
                        "for at most {}",
                        request_.stack, status, FormatDuration(request_.kill_grace)));
      }
    }
    if (give_up && Clock::now() >= *give_up) {
      return Fail(
          fmt::format("cancelled: stack {} is still {} after {}; its operation goes on "
                      "in AWS",
                      request_.stack, status, FormatDuration(request_.kill_grace)));
    }
    if (give_up) {
      // The rollback is followed at the same pace, whatever cancels.
      if (request_.sleep) {
        request_.sleep(request_.poll_interval);
      } else {
        std::this_thread::sleep_for(request_.poll_interval);
      }
    } else {
      Sleep(request_.poll_interval);  // a cancel ends it early: the update is cancelled at once
    }
  }
}

Result<StackDeployResult> Deployer::Run() {
  auto existing = Preflight();
  if (!existing) return Fail(existing.error());
  bool create = !*existing || (*existing)->status == "REVIEW_IN_PROGRESS";
  std::vector<aws::StackParameter> parameters;
  for (const auto& [key, value] : request_.parameters) {
    parameters.push_back(aws::StackParameter::Value(key, value));
  }
  if (!create) {
    if (auto capacity = SetCapacity(parameters); !capacity) return Fail(capacity.error());
  }
  // A deploy of the same build again (a rollback, a retry) gets a change set of its own.
  std::string unique = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  std::string name = ChangeSetName(request_.build_id, unique);
  aws::CreateChangeSetRequest create_request;
  create_request.stack_name = request_.stack;
  create_request.change_set_name = name;
  create_request.template_url = request_.template_url;
  create_request.template_body = request_.template_body;
  create_request.parameters = std::move(parameters);
  create_request.capabilities = request_.capabilities;
  create_request.type = create ? aws::ChangeSetType::kCreate : aws::ChangeSetType::kUpdate;
  create_request.client_token = name;
  Log(fmt::format("{} stack {}: change set {}", create ? "creating" : "updating", request_.stack,
                  name));
  auto created = cfn_.CreateChangeSet(create_request);
  if (!created && created.error().find("No updates are to be performed") != std::string::npos) {
    // Some endpoints refuse the change set itself rather than fail it.
    Log("no changes: the stack already is what this build describes");
    return StackDeployResult{(*existing)->id, (*existing)->status, false, (*existing)->outputs};
  }
  if (!created) return Fail(created.error());
  auto change_set = AwaitChangeSet(name);
  if (!change_set) return Fail(change_set.error());
  // An update that changes no resource is empty too, however it is reported.
  bool empty = aws::IsEmptyChangeSet(*change_set) ||
               (!create && change_set->status == "CREATE_COMPLETE" && change_set->changes.empty());
  if (change_set->status == "FAILED" || empty) {
    if (empty) {
      Log("no changes: the stack already is what this build describes; change set deleted");
      if (auto deleted = cfn_.DeleteChangeSet(request_.stack, name); !deleted) {
        Log(fmt::format("cannot delete the empty change set: {}", deleted.error()));
      }
      StackDeployResult result;
      result.stack_id = (*existing)->id;
      result.status = (*existing)->status;
      result.outputs = (*existing)->outputs;
      return result;
    }
    return Fail(fmt::format("change set {} failed: {} (left in place for inspection)", name,
                            change_set->status_reason));
  }
  LogChanges(*change_set);
  if (Cancelled()) {
    (void)cfn_.DeleteChangeSet(request_.stack, name);
    return Fail("cancelled before the change set was executed (it was deleted)");
  }
  // Events still in the history from earlier operations are not this one's.
  LogNewEvents("", /*show=*/false);
  if (auto executed = cfn_.ExecuteChangeSet(request_.stack, name, name); !executed) {
    return Fail(executed.error());
  }
  auto stack = Follow(name);
  if (!stack) return Fail(stack.error());
  if (!Succeeded(stack->status)) {
    std::string why = first_failure_.empty() ? stack->status_reason : first_failure_;
    return Fail(fmt::format("stack {} is {}{}", request_.stack, stack->status,
                            why.empty() ? "" : ": " + why));
  }
  Log(fmt::format("stack {} is {}", request_.stack, stack->status));
  StackDeployResult result;
  result.stack_id = stack->id;
  result.status = stack->status;
  result.changed = true;
  result.outputs = stack->outputs;
  return result;
}

}  // namespace

std::string ChangeSetName(std::string_view build_id, std::string_view unique) {
  std::string name = "runner-";
  for (char c : build_id) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  std::string suffix = "-" + std::string(unique);
  if (name.size() + suffix.size() > 128) name.resize(128 - suffix.size());
  return name + suffix;
}

Result<StackDeployResult> DeployStack(aws::CloudFormationClient& cloudformation,
                                      aws::AutoScalingClient& autoscaling,
                                      const StackDeployRequest& request) {
  return Deployer(cloudformation, autoscaling, request).Run();
}

}  // namespace runner::deploy
