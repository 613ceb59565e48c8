// The Auto Scaling call a deploy makes (SPEC section 7, capacity): reading a group's live size,
// on the generic request layer (aws_client.h), the Query API version 2011-01-01 signed as
// "autoscaling". Retried on throttling, 5xx and dropped connections by AwsClient.
#pragma once

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

inline constexpr std::string_view kAutoScalingVersion = "2011-01-01";

struct AutoScalingOptions : AwsTransportOptions {
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: https://autoscaling.REGION.amazonaws.com.
  std::string endpoint;
};

// An Auto Scaling group as DescribeAutoScalingGroups gives it.
struct AutoScalingGroup {
  std::string name;
  int min_size = 0;
  int max_size = 0;
  int desired_capacity = 0;
  int instance_count = 0;  // instances in the group, whatever their lifecycle state
  std::vector<std::string> termination_policies;  // in order: "OldestLaunchConfiguration", ...
};

// Thread-safe: calls may be made from several threads at once.
class AutoScalingClient {
 public:
  // Fails when the endpoint is not http(s)://host[:port] or the region is empty. `http` and
  // `credentials` must outlive the client.
  static Result<std::unique_ptr<AutoScalingClient>> Create(HttpClient& http,
                                                           CredentialsProvider& credentials,
                                                           AutoScalingOptions options);

  // The group named `name`; nullopt when there is none (AWS answers an empty list). An answer
  // whose sizes are not numbers is an error.
  Result<std::optional<AutoScalingGroup>> DescribeAutoScalingGroups(const std::string& name);

 private:
  explicit AutoScalingClient(std::unique_ptr<AwsClient> aws);

  std::unique_ptr<AwsClient> aws_;
};

}  // namespace runner::aws
