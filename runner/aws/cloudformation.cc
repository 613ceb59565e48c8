#include "runner/aws/cloudformation.h"

#include <fmt/format.h>

#include "runner/aws/query_api.h"
#include "runner/aws/service_client.h"
#include "runner/xml.h"

namespace runner::aws {

namespace {

// "Stack with id X does not exist", "Resource X does not exist for stack Y".
bool IsDoesNotExist(const AwsError& error) {
  return error.code == "ValidationError" &&
         error.message.find("does not exist") != std::string::npos;
}

AwsResult<QueryAnswer> Call(AwsClient& aws, std::string_view action, const Pairs& params,
                            std::string_view subject) {
  return SendQuery(aws, action, kCloudFormationVersion, params,
                   fmt::format("CloudFormation {} {}", action, subject));
}

// A call whose answer holds nothing to read.
Status Run(AwsClient& aws, std::string_view action, const Pairs& params, std::string_view subject) {
  AwsRequest request = QueryRequest(action, kCloudFormationVersion, params);
  request.what = fmt::format("CloudFormation {} {}", action, subject);
  AwsResult<HttpResponse> response = aws.Send(request);
  if (!response) return Fail(std::move(response.error().text));
  return {};
}

// `<Key><member><KEY_NAME>k</KEY_NAME><VALUE_NAME>v</VALUE_NAME></member>...`.
std::map<std::string, std::string> Members(const xml::Element& list, std::string_view key_name,
                                           std::string_view value_name) {
  std::map<std::string, std::string> out;
  for (const xml::Element& member : list.Children("member")) {
    out[member.ChildText(key_name)] = member.ChildText(value_name);
  }
  return out;
}

Result<Stack> ReadStack(const xml::Element& member, std::string_view what) {
  Stack stack;
  stack.id = member.ChildText("StackId");
  stack.name = member.ChildText("StackName");
  stack.status = member.ChildText("StackStatus");
  stack.status_reason = member.ChildText("StackStatusReason");
  stack.outputs = Members(member.Child("Outputs"), "OutputKey", "OutputValue");
  stack.parameters = Members(member.Child("Parameters"), "ParameterKey", "ParameterValue");
  auto created = ChildTime(member, "CreationTime", what);
  if (!created) return Fail(created.error());
  if (!*created) return Fail(fmt::format("{}: the stack has no CreationTime", what));
  stack.creation_time = **created;
  auto updated = ChildTime(member, "LastUpdatedTime", what);
  if (!updated) return Fail(updated.error());
  stack.last_updated_time = *updated;
  return stack;
}

Result<StackEvent> ReadEvent(const xml::Element& member, std::string_view what) {
  StackEvent event;
  event.event_id = member.ChildText("EventId");
  event.logical_id = member.ChildText("LogicalResourceId");
  event.physical_id = member.ChildText("PhysicalResourceId");
  event.resource_type = member.ChildText("ResourceType");
  event.status = member.ChildText("ResourceStatus");
  event.reason = member.ChildText("ResourceStatusReason");
  event.client_request_token = member.ChildText("ClientRequestToken");
  auto timestamp = ChildTime(member, "Timestamp", what);
  if (!timestamp) return Fail(timestamp.error());
  if (!*timestamp) return Fail(fmt::format("{}: event {} has no Timestamp", what, event.event_id));
  event.timestamp = **timestamp;
  return event;
}

std::string_view TypeName(ChangeSetType type) {
  return type == ChangeSetType::kCreate ? "CREATE" : "UPDATE";
}

}  // namespace

bool IsEmptyChangeSet(const ChangeSet& change_set) {
  if (change_set.status != "FAILED") return false;
  const std::string& reason = change_set.status_reason;
  return reason.find("didn't contain changes") != std::string::npos ||
         reason.find("No updates are to be performed") != std::string::npos;
}

Result<std::unique_ptr<CloudFormationClient>> CloudFormationClient::Create(
    HttpClient& http, CredentialsProvider& credentials, CloudFormationOptions options) {
  auto client = CreateServiceClient(http, credentials, "cloudformation", "CloudFormation", options);
  if (!client) return Fail(client.error());
  return std::unique_ptr<CloudFormationClient>(new CloudFormationClient(std::move(*client)));
}

CloudFormationClient::CloudFormationClient(std::unique_ptr<AwsClient> aws) : aws_(std::move(aws)) {}

Result<std::optional<Stack>> CloudFormationClient::DescribeStacks(const std::string& stack) {
  auto answer = Call(*aws_, "DescribeStacks", {{"StackName", stack}}, stack);
  if (!answer) {
    if (IsDoesNotExist(answer.error())) return std::nullopt;
    return Fail(std::move(answer.error().text));
  }
  std::vector<xml::Element> stacks = answer->result.Child("Stacks").Children("member");
  if (stacks.empty()) return std::nullopt;
  auto read = ReadStack(stacks.front(), fmt::format("CloudFormation DescribeStacks {}", stack));
  if (!read) return Fail(read.error());
  return std::move(*read);
}

Result<CreatedChangeSet> CloudFormationClient::CreateChangeSet(
    const CreateChangeSetRequest& request) {
  Pairs params = {{"StackName", request.stack_name},
                  {"ChangeSetName", request.change_set_name},
                  {"ChangeSetType", std::string(TypeName(request.type))}};
  if (request.template_url.empty()) {
    params.emplace_back("TemplateBody", request.template_body);
  } else {
    params.emplace_back("TemplateURL", request.template_url);
  }
  for (size_t i = 0; i < request.parameters.size(); ++i) {
    const StackParameter& parameter = request.parameters[i];
    const std::string prefix = fmt::format("Parameters.member.{}.", i + 1);
    params.emplace_back(prefix + "ParameterKey", parameter.key);
    if (parameter.use_previous_value) {
      params.emplace_back(prefix + "UsePreviousValue", "true");
    } else {
      params.emplace_back(prefix + "ParameterValue", parameter.value);
    }
  }
  for (size_t i = 0; i < request.capabilities.size(); ++i) {
    params.emplace_back(fmt::format("Capabilities.member.{}", i + 1), request.capabilities[i]);
  }
  if (!request.client_token.empty()) params.emplace_back("ClientToken", request.client_token);
  const std::string subject = request.stack_name + "/" + request.change_set_name;
  auto answer = Call(*aws_, "CreateChangeSet", params, subject);
  if (!answer) return Fail(std::move(answer.error().text));
  CreatedChangeSet created;
  created.id = answer->result.ChildText("Id");
  created.stack_id = answer->result.ChildText("StackId");
  if (created.id.empty()) {
    return Fail(fmt::format("CloudFormation CreateChangeSet {}: the answer holds no Id", subject));
  }
  return created;
}

Result<ChangeSet> CloudFormationClient::DescribeChangeSet(const std::string& stack,
                                                          const std::string& name) {
  const std::string subject = stack + "/" + name;
  ChangeSet change_set;
  std::string next_token;
  for (bool first = true; first || !next_token.empty(); first = false) {
    Pairs params = {{"StackName", stack}, {"ChangeSetName", name}};
    if (!next_token.empty()) params.emplace_back("NextToken", next_token);
    auto answer = Call(*aws_, "DescribeChangeSet", params, subject);
    if (!answer) return Fail(std::move(answer.error().text));
    const xml::Element& result = answer->result;
    change_set.id = result.ChildText("ChangeSetId");
    change_set.name = result.ChildText("ChangeSetName");
    change_set.stack_id = result.ChildText("StackId");
    change_set.stack_name = result.ChildText("StackName");
    change_set.status = result.ChildText("Status");
    change_set.status_reason = result.ChildText("StatusReason");
    change_set.execution_status = result.ChildText("ExecutionStatus");
    for (const xml::Element& member : result.Child("Changes").Children("member")) {
      xml::Element resource = member.Child("ResourceChange");
      if (!resource) continue;  // AWS knows no other Type of change yet
      ResourceChange change;
      change.action = resource.ChildText("Action");
      change.logical_id = resource.ChildText("LogicalResourceId");
      change.physical_id = resource.ChildText("PhysicalResourceId");
      change.resource_type = resource.ChildText("ResourceType");
      change.replacement = resource.ChildText("Replacement");
      change_set.changes.push_back(std::move(change));
    }
    std::string token = result.ChildText("NextToken");
    if (!token.empty() && token == next_token) {
      return Fail(fmt::format("CloudFormation DescribeChangeSet {}: NextToken '{}' repeats",
                              subject, token));
    }
    next_token = std::move(token);
  }
  return change_set;
}

Status CloudFormationClient::ExecuteChangeSet(const std::string& stack, const std::string& name,
                                              const std::string& client_request_token) {
  Pairs params = {{"StackName", stack}, {"ChangeSetName", name}};
  if (!client_request_token.empty()) {
    params.emplace_back("ClientRequestToken", client_request_token);
  }
  return Run(*aws_, "ExecuteChangeSet", params, stack + "/" + name);
}

Status CloudFormationClient::DeleteChangeSet(const std::string& stack, const std::string& name) {
  return Run(*aws_, "DeleteChangeSet", {{"StackName", stack}, {"ChangeSetName", name}},
             stack + "/" + name);
}

Result<std::vector<StackEvent>> CloudFormationClient::DescribeStackEvents(
    const std::string& stack, const std::function<bool(const StackEvent&)>& stop) {
  const std::string what = fmt::format("CloudFormation DescribeStackEvents {}", stack);
  std::vector<StackEvent> events;
  std::string next_token;
  for (bool first = true; first || !next_token.empty(); first = false) {
    Pairs params = {{"StackName", stack}};
    if (!next_token.empty()) params.emplace_back("NextToken", next_token);
    auto answer = Call(*aws_, "DescribeStackEvents", params, stack);
    if (!answer) return Fail(std::move(answer.error().text));
    for (const xml::Element& member : answer->result.Child("StackEvents").Children("member")) {
      auto event = ReadEvent(member, what);
      if (!event) return Fail(event.error());
      if (stop && stop(*event)) return events;
      events.push_back(std::move(*event));
    }
    std::string token = answer->result.ChildText("NextToken");
    if (!token.empty() && token == next_token) {
      return Fail(fmt::format("{}: NextToken '{}' repeats", what, token));
    }
    next_token = std::move(token);
  }
  return events;
}

Status CloudFormationClient::CancelUpdateStack(const std::string& stack,
                                               const std::string& client_request_token) {
  Pairs params = {{"StackName", stack}};
  if (!client_request_token.empty()) {
    params.emplace_back("ClientRequestToken", client_request_token);
  }
  return Run(*aws_, "CancelUpdateStack", params, stack);
}

Result<std::optional<StackResource>> CloudFormationClient::DescribeStackResource(
    const std::string& stack, const std::string& logical_id) {
  auto answer =
      Call(*aws_, "DescribeStackResource",
           {{"StackName", stack}, {"LogicalResourceId", logical_id}}, stack + " " + logical_id);
  if (!answer) {
    if (IsDoesNotExist(answer.error())) return std::nullopt;
    return Fail(std::move(answer.error().text));
  }
  xml::Element detail = answer->result.Child("StackResourceDetail");
  if (!detail) {
    return Fail(
        fmt::format("CloudFormation DescribeStackResource {} {}: the answer holds no "
                    "StackResourceDetail",
                    stack, logical_id));
  }
  StackResource resource;
  resource.logical_id = detail.ChildText("LogicalResourceId");
  resource.physical_id = detail.ChildText("PhysicalResourceId");
  resource.resource_type = detail.ChildText("ResourceType");
  resource.status = detail.ChildText("ResourceStatus");
  resource.status_reason = detail.ChildText("ResourceStatusReason");
  return resource;
}

}  // namespace runner::aws
