#include "runner/aws/codedeploy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "runner/aws/service_client.h"

namespace runner::aws {

namespace {

using Json = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

// BatchGetDeploymentInstances takes at most this many instance ids.
constexpr size_t kBatchSize = 25;

Result<Json> Call(AwsClient& aws, std::string_view operation, const Json& body,
                  std::string_view subject) {
  return CallJson(aws, {.target_prefix = kCodeDeployTarget}, operation, body,
                  fmt::format("CodeDeploy {} {}", operation, subject));
}

// The member `key` of `object` when it is of the wanted type; else an empty one. CodeDeploy
// leaves out (or sends null for) whatever does not apply.
const Json& Object(const Json& object, std::string_view key) {
  static const Json kEmpty = Json::object();
  auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

const Json& Array(const Json& object, std::string_view key) {
  static const Json kEmpty = Json::array();
  auto it = object.find(key);
  return it != object.end() && it->is_array() ? *it : kEmpty;
}

int Int(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : 0;
}

// A time as AWS's JSON 1.1 gives it, seconds since the epoch with a fraction (1722506405.123),
// or as moto does, ISO 8601; nullopt when absent or null.
Result<std::optional<TimePoint>> Time(const Json& object, std::string_view key,
                                      std::string_view what) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) {
    const double seconds = it->get<double>();
    if (!std::isfinite(seconds)) return Fail(fmt::format("{}: {} is not a time", what, key));
    return TimePoint(
        std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(seconds)));
  }
  if (it->is_string()) {
    Result<TimePoint> time = ParseIsoTime(it->get<std::string>());
    if (!time) return Fail(fmt::format("{}: {}: {}", what, key, time.error()));
    return *time;
  }
  return Fail(fmt::format("{}: {} is not a time", what, key));
}

std::string_view BehaviorName(FileExistsBehavior behavior) {
  switch (behavior) {
    case FileExistsBehavior::kDisallow:
      return "DISALLOW";
    case FileExistsBehavior::kOverwrite:
      return "OVERWRITE";
    case FileExistsBehavior::kRetain:
      return "RETAIN";
  }
  return "DISALLOW";
}

}  // namespace

std::optional<FileExistsBehavior> ParseFileExistsBehavior(std::string_view name) {
  for (auto behavior : {FileExistsBehavior::kDisallow, FileExistsBehavior::kOverwrite,
                        FileExistsBehavior::kRetain}) {
    if (BehaviorName(behavior) == name) return behavior;
  }
  return std::nullopt;
}

namespace {

Result<LifecycleEvent> ReadEvent(const Json& json, std::string_view what) {
  LifecycleEvent event;
  event.name = JsonString(json, "lifecycleEventName");
  event.status = JsonString(json, "status");
  const Json& diagnostics = Object(json, "diagnostics");
  event.diagnostics.error_code = JsonString(diagnostics, "errorCode");
  event.diagnostics.script_name = JsonString(diagnostics, "scriptName");
  event.diagnostics.message = JsonString(diagnostics, "message");
  event.diagnostics.log_tail = JsonString(diagnostics, "logTail");
  auto start = Time(json, "startTime", what);
  if (!start) return Fail(start.error());
  event.start = *start;
  auto end = Time(json, "endTime", what);
  if (!end) return Fail(end.error());
  event.end = *end;
  return event;
}

Result<DeploymentInstance> ReadInstance(const Json& json, std::string_view what) {
  DeploymentInstance instance;
  instance.instance_id = JsonString(json, "instanceId");
  instance.status = JsonString(json, "status");
  auto updated = Time(json, "lastUpdatedAt", what);
  if (!updated) return Fail(updated.error());
  instance.last_updated = *updated;
  for (const Json& event : Array(json, "lifecycleEvents")) {
    Result<LifecycleEvent> read = ReadEvent(event, what);
    if (!read) return Fail(read.error());
    instance.lifecycle_events.push_back(std::move(*read));
  }
  return instance;
}

}  // namespace

bool IsTerminal(std::string_view status) {
  return status == "Succeeded" || status == "Failed" || status == "Stopped";
}

Result<std::unique_ptr<CodeDeployClient>> CodeDeployClient::Create(HttpClient& http,
                                                                   CredentialsProvider& credentials,
                                                                   CodeDeployOptions options) {
  auto client = CreateServiceClient(http, credentials, "codedeploy", "CodeDeploy", options);
  if (!client) return Fail(client.error());
  return std::unique_ptr<CodeDeployClient>(new CodeDeployClient(std::move(*client)));
}

CodeDeployClient::CodeDeployClient(std::unique_ptr<AwsClient> aws) : aws_(std::move(aws)) {}

Result<std::string> CodeDeployClient::CreateDeployment(const CreateDeploymentRequest& request) {
  Json location = {{"bucket", request.revision.bucket},
                   {"key", request.revision.key},
                   {"bundleType", request.revision.bundle_type},
                   {"eTag", request.revision.etag}};
  if (!request.revision.version.empty()) location["version"] = request.revision.version;
  Json body = {{"applicationName", request.application},
               {"deploymentGroupName", request.group},
               {"revision", {{"revisionType", "S3"}, {"s3Location", std::move(location)}}}};
  if (!request.config.empty()) body["deploymentConfigName"] = request.config;
  if (!request.description.empty()) body["description"] = request.description;
  if (request.file_exists_behavior) {
    body["fileExistsBehavior"] = BehaviorName(*request.file_exists_behavior);
  }
  if (request.auto_rollback) {
    body["autoRollbackConfiguration"] = {{"enabled", request.auto_rollback->enabled},
                                         {"events", request.auto_rollback->events}};
  }
  const std::string subject = fmt::format("{}/{}", request.application, request.group);
  Result<Json> answer = Call(*aws_, "CreateDeployment", body, subject);
  if (!answer) return Fail(answer.error());
  std::string id = JsonString(*answer, "deploymentId");
  if (id.empty()) {
    return Fail(
        fmt::format("CodeDeploy CreateDeployment {}: the answer holds no deploymentId", subject));
  }
  return id;
}

Result<Deployment> CodeDeployClient::GetDeployment(const std::string& id) {
  const std::string what = fmt::format("CodeDeploy GetDeployment {}", id);
  Result<Json> answer = Call(*aws_, "GetDeployment", {{"deploymentId", id}}, id);
  if (!answer) return Fail(answer.error());
  const Json& info = Object(*answer, "deploymentInfo");
  Deployment deployment;
  deployment.id = JsonString(info, "deploymentId");
  if (deployment.id.empty()) return Fail(what + ": the answer holds no deploymentInfo");
  deployment.application = JsonString(info, "applicationName");
  deployment.group = JsonString(info, "deploymentGroupName");
  deployment.status = JsonString(info, "status");
  const Json& error = Object(info, "errorInformation");
  deployment.error_code = JsonString(error, "code");
  deployment.error_message = JsonString(error, "message");
  const Json& overview = Object(info, "deploymentOverview");
  deployment.overview = {Int(overview, "Pending"),   Int(overview, "InProgress"),
                         Int(overview, "Succeeded"), Int(overview, "Failed"),
                         Int(overview, "Skipped"),   Int(overview, "Ready")};
  const Json& rollback = Object(info, "rollbackInfo");
  deployment.rollback_deployment_id = JsonString(rollback, "rollbackDeploymentId");
  deployment.rollback_triggering_deployment_id =
      JsonString(rollback, "rollbackTriggeringDeploymentId");
  deployment.rollback_message = JsonString(rollback, "rollbackMessage");
  const Json& revision = Object(info, "revision");
  if (JsonString(revision, "revisionType") == "S3") {
    const Json& location = Object(revision, "s3Location");
    deployment.revision = S3Revision{JsonString(location, "bucket"), JsonString(location, "key"),
                                     JsonString(location, "bundleType"),
                                     JsonString(location, "eTag"), JsonString(location, "version")};
  }
  auto created = Time(info, "createTime", what);
  if (!created) return Fail(created.error());
  if (!*created) return Fail(what + ": the deployment has no createTime");
  deployment.create_time = **created;
  auto completed = Time(info, "completeTime", what);
  if (!completed) return Fail(completed.error());
  deployment.complete_time = *completed;
  return deployment;
}

Result<std::vector<std::string>> CodeDeployClient::ListDeploymentInstances(const std::string& id) {
  std::vector<std::string> ids;
  std::string token;
  do {
    Json body = {{"deploymentId", id}};
    if (!token.empty()) body["nextToken"] = token;
    Result<Json> answer = Call(*aws_, "ListDeploymentInstances", body, id);
    if (!answer) return Fail(answer.error());
    for (const Json& instance : Array(*answer, "instancesList")) {
      if (instance.is_string()) ids.push_back(instance.get<std::string>());
    }
    token = JsonString(*answer, "nextToken");
  } while (!token.empty());
  return ids;
}

Result<std::vector<DeploymentInstance>> CodeDeployClient::BatchGetDeploymentInstances(
    const std::string& id, const std::vector<std::string>& instance_ids) {
  std::vector<DeploymentInstance> instances;
  for (size_t first = 0; first < instance_ids.size(); first += kBatchSize) {
    const size_t last = std::min(instance_ids.size(), first + kBatchSize);
    const std::vector<std::string> batch(instance_ids.begin() + static_cast<ptrdiff_t>(first),
                                         instance_ids.begin() + static_cast<ptrdiff_t>(last));
    const std::string what = fmt::format("CodeDeploy BatchGetDeploymentInstances {}", id);
    Result<Json> answer = Call(*aws_, "BatchGetDeploymentInstances",
                               {{"deploymentId", id}, {"instanceIds", batch}}, id);
    if (!answer) return Fail(answer.error());
    // CodeDeploy answers 200 with errorMessage when it could not read some instances.
    if (std::string error = JsonString(*answer, "errorMessage"); !error.empty()) {
      return Fail(fmt::format("{}: {}", what, error));
    }
    for (const Json& summary : Array(*answer, "instancesSummary")) {
      Result<DeploymentInstance> instance = ReadInstance(summary, what);
      if (!instance) return Fail(instance.error());
      instances.push_back(std::move(*instance));
    }
  }
  return instances;
}

Result<StopDeploymentAnswer> CodeDeployClient::StopDeployment(const std::string& id,
                                                              bool auto_rollback_enabled) {
  Result<Json> answer =
      Call(*aws_, "StopDeployment",
           {{"deploymentId", id}, {"autoRollbackEnabled", auto_rollback_enabled}}, id);
  if (!answer) return Fail(answer.error());
  return StopDeploymentAnswer{JsonString(*answer, "status"), JsonString(*answer, "statusMessage")};
}

}  // namespace runner::aws
