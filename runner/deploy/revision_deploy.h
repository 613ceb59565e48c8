// A CodeDeploy deployment of a build's revision (SPEC section 7, item 5): created with
// automatic rollback, then followed to its end with every instance's lifecycle events and the
// progress in the log; on a failure, the failing instance, hook and its log tail; an automatic
// rollback is followed too; a cancel stops the deployment with rollback and follows it for at
// most kill_grace.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "runner/aws/codedeploy.h"
#include "runner/duration.h"
#include "runner/result.h"

namespace runner::deploy {

struct RevisionDeployRequest {
  std::string application;
  std::string group;
  std::string config;                                  // empty: the group's own
  std::optional<aws::FileExistsBehavior> file_exists;  // nullopt: CodeDeploy's (DISALLOW)
  aws::S3Revision revision;
  std::string description;  // the build id
  Duration poll_interval = std::chrono::seconds(5);
  Duration kill_grace = std::chrono::minutes(10);
  std::function<void(std::string_view)> log;  // one line at a time
  std::function<bool()> cancelled;
  std::function<void(Duration)> sleep;  // empty: short slices, ending early on a cancel
};

struct RevisionDeployResult {
  std::string deployment_id;
  std::string status;  // Succeeded
};

// Deploys the revision; a deployment that failed or was stopped is an error naming its error,
// the failing instance and hook, and how its rollback ended.
Result<RevisionDeployResult> DeployRevision(aws::CodeDeployClient& codedeploy,
                                            const RevisionDeployRequest& request);

}  // namespace runner::deploy
