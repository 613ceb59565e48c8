// The CloudFormation calls a deploy makes (SPEC section 7), on the generic request layer
// (aws_client.h): the Query API, version 2010-05-15, signed as "cloudformation". Reading a
// stack, creating, reading, executing and deleting a change set, reading the stack's events and
// one of its resources, cancelling an update. Every call is retried on throttling, 5xx and
// dropped connections by AwsClient; a failure is a message naming the call, the stack and
// AWS's code and message ("ValidationError: Template format error: ... (CloudFormation
// CreateChangeSet orders-stg/runner-157)").
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/result.h"

namespace runner::aws {

inline constexpr std::string_view kCloudFormationVersion = "2010-05-15";

struct CloudFormationOptions : AwsTransportOptions {
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: https://cloudformation.REGION.amazonaws.com.
  std::string endpoint;
};

// A stack as DescribeStacks gives it.
struct Stack {
  std::string id;  // the stack's ARN
  std::string name;
  std::string status;         // StackStatus: "CREATE_COMPLETE", "UPDATE_ROLLBACK_FAILED", ...
  std::string status_reason;  // empty when AWS gives none
  std::map<std::string, std::string> outputs;     // OutputKey -> OutputValue
  std::map<std::string, std::string> parameters;  // ParameterKey -> ParameterValue
  std::chrono::system_clock::time_point creation_time;
  // nullopt until the stack is first updated.
  std::optional<std::chrono::system_clock::time_point> last_updated_time;
};

// A parameter of a change set: a value, or the stack's current one.
struct StackParameter {
  std::string key;
  std::string value;  // ignored with use_previous_value
  bool use_previous_value = false;

  static StackParameter Value(std::string key, std::string value) {
    return {std::move(key), std::move(value), false};
  }
  static StackParameter UsePrevious(std::string key) { return {std::move(key), "", true}; }
};

enum class ChangeSetType {
  kCreate,  // the stack does not exist yet: CloudFormation makes it in REVIEW_IN_PROGRESS
  kUpdate,
};

struct CreateChangeSetRequest {
  std::string stack_name;
  std::string change_set_name;  // letters, digits and '-', starting with a letter
  std::string template_url;     // an S3 URL of the template
  // The template itself (at most 51,200 bytes), when it is not in S3; used when template_url
  // is empty.
  std::string template_body;
  std::vector<StackParameter> parameters;
  std::vector<std::string> capabilities;  // "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", ...
  ChangeSetType type = ChangeSetType::kUpdate;
  // Makes the call idempotent: a retry whose first attempt reached AWS gets the same change
  // set back instead of an AlreadyExistsException. Empty: none sent.
  std::string client_token;
};

// What CreateChangeSet answers.
struct CreatedChangeSet {
  std::string id;        // the change set's ARN
  std::string stack_id;  // the stack's ARN (new for a CREATE change set)
};

// One resource a change set adds, modifies or removes.
struct ResourceChange {
  std::string action;  // "Add", "Modify", "Remove", "Import", "Dynamic"
  std::string logical_id;
  std::string physical_id;    // empty for "Add"
  std::string resource_type;  // "AWS::AutoScaling::AutoScalingGroup"
  // For "Modify": whether the resource is replaced, "True", "False" or "Conditional"; empty
  // otherwise.
  std::string replacement;
};

// A change set as DescribeChangeSet gives it, every page of its changes joined.
struct ChangeSet {
  std::string id;  // the change set's ARN
  std::string name;
  std::string stack_id;
  std::string stack_name;
  // CREATE_PENDING, CREATE_IN_PROGRESS, CREATE_COMPLETE, DELETE_PENDING, DELETE_IN_PROGRESS,
  // DELETE_COMPLETE, DELETE_FAILED or FAILED.
  std::string status;
  std::string status_reason;
  // UNAVAILABLE, AVAILABLE, EXECUTE_IN_PROGRESS, EXECUTE_COMPLETE, EXECUTE_FAILED or OBSOLETE.
  std::string execution_status;
  std::vector<ResourceChange> changes;
};

// Whether `change_set` failed only because it changes nothing: status FAILED with the reason
// "The submitted information didn't contain changes. ..." or "No updates are to be
// performed.". Such a change set can only be deleted; the deploy is a success that changed
// nothing.
bool IsEmptyChangeSet(const ChangeSet& change_set);

// A stack event, as DescribeStackEvents gives it.
struct StackEvent {
  std::string event_id;
  std::chrono::system_clock::time_point timestamp;
  std::string logical_id;  // the stack's name for the stack's own events
  std::string physical_id;
  std::string resource_type;  // "AWS::CloudFormation::Stack" for the stack's own events
  std::string status;         // ResourceStatus: "UPDATE_IN_PROGRESS", "CREATE_FAILED", ...
  std::string reason;         // ResourceStatusReason; empty when none
  // The ClientRequestToken of the operation (ExecuteChangeSet, CancelUpdateStack) that caused
  // the event; empty when none was given.
  std::string client_request_token;
};

// A resource of a stack, as DescribeStackResource gives it.
struct StackResource {
  std::string logical_id;
  std::string physical_id;    // an Auto Scaling group's name, an instance id, ...
  std::string resource_type;  // "AWS::AutoScaling::AutoScalingGroup"
  std::string status;         // "CREATE_COMPLETE", "UPDATE_IN_PROGRESS", ...
  std::string status_reason;  // empty when none
};

// Thread-safe: calls may be made from several threads at once.
class CloudFormationClient {
 public:
  // Fails when the endpoint is not http(s)://host[:port] or the region is empty. `http` and
  // `credentials` must outlive the client.
  static Result<std::unique_ptr<CloudFormationClient>> Create(HttpClient& http,
                                                              CredentialsProvider& credentials,
                                                              CloudFormationOptions options);

  // The stack named `stack` (a name or an ARN); nullopt when there is none (AWS answers
  // ValidationError "Stack with id X does not exist").
  Result<std::optional<Stack>> DescribeStacks(const std::string& stack);

  // Creates a change set; CloudFormation then computes it in the background (DescribeChangeSet
  // says when it is CREATE_COMPLETE or FAILED).
  Result<CreatedChangeSet> CreateChangeSet(const CreateChangeSetRequest& request);

  // The change set `name` of `stack` with all its changes (every NextToken page fetched). A
  // missing change set is an error (ChangeSetNotFound).
  Result<ChangeSet> DescribeChangeSet(const std::string& stack, const std::string& name);

  // Starts the update the change set describes. `client_request_token` (may be empty) tags
  // every stack event the operation causes, and makes a retry of the call idempotent.
  Status ExecuteChangeSet(const std::string& stack, const std::string& name,
                          const std::string& client_request_token);

  // Deletes a change set that was not executed (an empty one, an abandoned deploy's).
  Status DeleteChangeSet(const std::string& stack, const std::string& name);

  // The stack's events, newest first as AWS gives them, page after page, stopping before the
  // first event for which `stop` returns true (the newest event already seen, say), so that
  // older pages are not fetched. An unset `stop` reads the whole history.
  Result<std::vector<StackEvent>> DescribeStackEvents(
      const std::string& stack, const std::function<bool(const StackEvent&)>& stop = {});

  // Cancels an update in progress; CloudFormation then rolls it back. `client_request_token`
  // (may be empty) tags the events of the rollback.
  Status CancelUpdateStack(const std::string& stack, const std::string& client_request_token = {});

  // The resource `logical_id` of `stack`; nullopt when the stack or the resource does not exist
  // (AWS answers ValidationError "... does not exist").
  Result<std::optional<StackResource>> DescribeStackResource(const std::string& stack,
                                                             const std::string& logical_id);

 private:
  explicit CloudFormationClient(std::unique_ptr<AwsClient> aws);

  std::unique_ptr<AwsClient> aws_;
};

}  // namespace runner::aws
