// A CloudFormation deploy of one template and its parameters (SPEC section 7, steps 1 to 4):
// preflight of the stack's status, the capacity parameter from the live Auto Scaling group, a
// change set named from the build, its changes logged, an empty one deleted as a success, then
// the execution followed through this operation's stack events until a terminal status, and a
// cancel that rolls an update back.
//
// What `aws cloudformation deploy` does differently, and why:
// - its waiter gives up after 120 polls of 30 s; here only the caller's cancellation (the
//   step's timeout) bounds the wait;
// - it leaves an empty change set behind; here it is deleted;
// - it shows no events; here this operation's events (by its client request token, not by
//   timestamps, which break under clock skew) are logged oldest first as they happen.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/aws/autoscaling.h"
#include "runner/aws/cloudformation.h"
#include "runner/duration.h"
#include "runner/result.h"

namespace runner::deploy {

struct StackDeployRequest {
  std::string stack;
  std::string template_body;  // the build's template, its bytes already checked
  // The S3 URL of those bytes (CloudFormation reads them there); empty: the body is sent
  // (at most 51,200 bytes).
  std::string template_url;
  // The build's parameters with the environment's overrides, in order.
  std::vector<std::pair<std::string, std::string>> parameters;
  std::vector<std::string> capabilities;
  std::string build_id;  // names the change set
  Duration poll_interval = std::chrono::seconds(5);
  // After a cancel, how long the rollback is followed before giving up on it.
  Duration kill_grace = std::chrono::minutes(10);
  std::function<void(std::string_view)> log;  // one line at a time, without its newline
  std::function<bool()> cancelled;            // polled while waiting
  // Sleeps (the tests make it instant); empty: waits in short slices, ending early on a cancel.
  std::function<void(Duration)> sleep;
};

struct StackDeployResult {
  std::string stack_id;
  std::string status;    // the stack's final status
  bool changed = false;  // false: the change set was empty (and deleted)
  std::map<std::string, std::string> outputs;
};

// Deploys `request` to its stack. An error says what failed and what to do; a deploy that
// failed and rolled back, or was cancelled, is an error naming the final status and the first
// failure's reason.
Result<StackDeployResult> DeployStack(aws::CloudFormationClient& cloudformation,
                                      aws::AutoScalingClient& autoscaling,
                                      const StackDeployRequest& request);

// The change set's name for a build: "runner-" and the build id with every character outside
// [A-Za-z0-9-] turned into '-', then "-" and `unique` (the time in milliseconds), at most 128
// characters.
std::string ChangeSetName(std::string_view build_id, std::string_view unique);

}  // namespace runner::deploy
