#include "runner/aws/autoscaling.h"

#include <fmt/format.h>

#include <charconv>

#include "runner/aws/query_api.h"
#include "runner/aws/service_client.h"
#include "runner/xml.h"

namespace runner::aws {

namespace {

Result<int> ChildInt(const xml::Element& element, std::string_view name, std::string_view what) {
  const std::string text = element.ChildText(name);
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return Fail(fmt::format("{}: {} '{}' is not a number", what, name, text));
  }
  return value;
}

}  // namespace

Result<std::unique_ptr<AutoScalingClient>> AutoScalingClient::Create(
    HttpClient& http, CredentialsProvider& credentials, AutoScalingOptions options) {
  auto client = CreateServiceClient(http, credentials, "autoscaling", "Auto Scaling", options);
  if (!client) return Fail(client.error());
  return std::unique_ptr<AutoScalingClient>(new AutoScalingClient(std::move(*client)));
}

AutoScalingClient::AutoScalingClient(std::unique_ptr<AwsClient> aws) : aws_(std::move(aws)) {}

Result<std::optional<AutoScalingGroup>> AutoScalingClient::DescribeAutoScalingGroups(
    const std::string& name) {
  const std::string what = fmt::format("Auto Scaling DescribeAutoScalingGroups {}", name);
  auto answer = SendQuery(*aws_, "DescribeAutoScalingGroups", kAutoScalingVersion,
                          {{"AutoScalingGroupNames.member.1", name}}, what);
  if (!answer) return Fail(std::move(answer.error().text));
  std::vector<xml::Element> groups = answer->result.Child("AutoScalingGroups").Children("member");
  if (groups.empty()) return std::nullopt;
  const xml::Element& member = groups.front();
  AutoScalingGroup group;
  group.name = member.ChildText("AutoScalingGroupName");
  for (auto [field, field_name] :
       {std::pair{&group.min_size, "MinSize"}, std::pair{&group.max_size, "MaxSize"},
        std::pair{&group.desired_capacity, "DesiredCapacity"}}) {
    Result<int> value = ChildInt(member, field_name, what);
    if (!value) return Fail(value.error());
    *field = *value;
  }
  group.instance_count = static_cast<int>(member.Child("Instances").Children("member").size());
  for (const xml::Element& policy : member.Child("TerminationPolicies").Children("member")) {
    group.termination_policies.push_back(policy.Text());
  }
  return group;
}

}  // namespace runner::aws
