// The CodeDeploy calls a deploy makes (SPEC section 7 item 5), on the generic request layer
// (aws_client.h): the JSON 1.1 protocol, target CodeDeploy_20141006, signed as "codedeploy".
// Creating a deployment of a revision in S3, reading it, its instances and their lifecycle
// events (with a failing hook's log tail), stopping it. Every call is retried on throttling,
// 5xx and dropped connections by AwsClient; a failure is a message naming the call and its
// subject with AWS's code and message ("DeploymentGroupDoesNotExistException: ... (CodeDeploy
// CreateDeployment orders/orders-stg)").
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/result.h"

namespace runner::aws {

inline constexpr std::string_view kCodeDeployTarget = "CodeDeploy_20141006";

struct CodeDeployOptions : AwsTransportOptions {
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: https://codedeploy.REGION.amazonaws.com.
  std::string endpoint;
};

// A revision stored in S3 (revisionType S3).
struct S3Revision {
  std::string bucket;
  std::string key;
  std::string bundle_type = "zip";  // "zip", "tar", "tgz"
  std::string etag;                 // without the quotes S3 puts around it
  std::string version;              // the object's version id; empty: none sent
};

// What CodeDeploy does with a file of the revision that is already on the instance but was not
// put there by the previous deployment.
enum class FileExistsBehavior { kDisallow, kOverwrite, kRetain };
// "DISALLOW", "OVERWRITE", "RETAIN" (CodeDeploy's names); nullopt for another.
std::optional<FileExistsBehavior> ParseFileExistsBehavior(std::string_view name);

struct AutoRollback {
  bool enabled = true;
  // "DEPLOYMENT_FAILED", "DEPLOYMENT_STOP_ON_REQUEST", "DEPLOYMENT_STOP_ON_ALARM".
  std::vector<std::string> events = {"DEPLOYMENT_FAILED", "DEPLOYMENT_STOP_ON_REQUEST"};
};

struct CreateDeploymentRequest {
  std::string application;
  std::string group;
  std::string config;  // "CodeDeployDefault.OneAtATime"; empty: the group's
  S3Revision revision;
  std::optional<FileExistsBehavior> file_exists_behavior;  // nullopt: CodeDeploy's (DISALLOW)
  std::optional<AutoRollback> auto_rollback;               // nullopt: the group's setting
  std::string description;                                 // empty: none sent
};

// DeploymentOverview: how many instances are in each state.
struct DeploymentOverview {
  int pending = 0;
  int in_progress = 0;
  int succeeded = 0;
  int failed = 0;
  int skipped = 0;
  int ready = 0;
};

// A deployment as GetDeployment gives it.
struct Deployment {
  std::string id;
  std::string application;
  std::string group;
  // Created, Queued, InProgress, Baking, Succeeded, Failed, Stopped or Ready.
  std::string status;
  std::string error_code;     // errorInformation; empty when none
  std::string error_message;  // empty when none
  DeploymentOverview overview;
  std::string rollback_deployment_id;             // the deployment rolling this one back
  std::string rollback_triggering_deployment_id;  // the deployment this one rolls back
  std::string rollback_message;
  std::optional<S3Revision> revision;  // nullopt when the revision is not in S3
  std::chrono::system_clock::time_point create_time;
  std::optional<std::chrono::system_clock::time_point> complete_time;  // nullopt until it ends
};

// Whether a deployment in `status` will change no more: Succeeded, Failed or Stopped.
bool IsTerminal(std::string_view status);

// Why a lifecycle event failed.
struct LifecycleDiagnostics {
  std::string error_code;   // "Success", "ScriptFailed", "ScriptMissing", "ScriptTimedOut", ...
  std::string script_name;  // the hook's script, as the AppSpec names it
  std::string message;
  std::string log_tail;  // the last 4 KB of the script's output
};

struct LifecycleEvent {
  std::string name;    // "ApplicationStop", "BeforeInstall", ..., "ValidateService"
  std::string status;  // Pending, InProgress, Succeeded, Failed, Skipped or Unknown
  std::optional<std::chrono::system_clock::time_point> start;
  std::optional<std::chrono::system_clock::time_point> end;
  LifecycleDiagnostics diagnostics;  // all empty when CodeDeploy gives none
};

// An instance of a deployment, as BatchGetDeploymentInstances gives it.
struct DeploymentInstance {
  std::string instance_id;
  std::string status;  // Pending, InProgress, Succeeded, Failed, Skipped, Unknown, Ready
  std::optional<std::chrono::system_clock::time_point> last_updated;
  std::vector<LifecycleEvent> lifecycle_events;  // in the order they run
};

// What StopDeployment answers.
struct StopDeploymentAnswer {
  std::string status;  // "Pending" or "Succeeded"
  std::string message;
};

// Thread-safe: calls may be made from several threads at once.
class CodeDeployClient {
 public:
  // Fails when the endpoint is not http(s)://host[:port] or the region is empty. `http` and
  // `credentials` must outlive the client.
  static Result<std::unique_ptr<CodeDeployClient>> Create(HttpClient& http,
                                                          CredentialsProvider& credentials,
                                                          CodeDeployOptions options);

  // Starts a deployment of the revision to the group; its id ("d-A1B2C3D4E").
  Result<std::string> CreateDeployment(const CreateDeploymentRequest& request);

  // The deployment `id`; a missing one is an error (DeploymentDoesNotExistException).
  Result<Deployment> GetDeployment(const std::string& id);

  // The ids of the deployment's instances, every nextToken page fetched.
  Result<std::vector<std::string>> ListDeploymentInstances(const std::string& id);

  // The instances `instance_ids` of deployment `id`, 25 to a call, in the order AWS gives them.
  Result<std::vector<DeploymentInstance>> BatchGetDeploymentInstances(
      const std::string& id, const std::vector<std::string>& instance_ids);

  // Stops the deployment; with `auto_rollback_enabled`, CodeDeploy then rolls the instances
  // back to the last revision that succeeded.
  Result<StopDeploymentAnswer> StopDeployment(const std::string& id,
                                              bool auto_rollback_enabled = true);

 private:
  explicit CodeDeployClient(std::unique_ptr<AwsClient> aws);

  std::unique_ptr<AwsClient> aws_;
};

}  // namespace runner::aws
