// The EC2 calls a bake makes (SPEC section 8): finding images (a source AMI, an earlier bake's
// AMIs by tag) and tagging the AMIs a bake made, on the generic request layer (aws_client.h),
// the Query API version 2016-11-15 signed as "ec2". Retried on throttling, 5xx and dropped
// connections by AwsClient.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/result.h"

namespace runner::aws {

inline constexpr std::string_view kEc2Version = "2016-11-15";

struct Ec2Options : AwsTransportOptions {
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: https://ec2.REGION.amazonaws.com.
  std::string endpoint;
};

// A filter of DescribeImages: `name` ("name", "state", "tag:runner:bake-key", ...) matching
// any of `values` (which may hold the wildcards * and ?).
struct Ec2Filter {
  std::string name;
  std::vector<std::string> values;
};

struct DescribeImagesRequest {
  std::vector<std::string> owners;     // "self", "amazon", account ids; empty: any
  std::vector<std::string> image_ids;  // empty: any
  std::vector<Ec2Filter> filters;      // all must match
};

// An image as DescribeImages gives it.
struct Ec2Image {
  std::string id;  // "ami-0123456789abcdef0"
  std::string name;
  std::string state;  // "available", "pending", "failed", ...
  std::string owner_id;
  std::string creation_date;  // as AWS wrote it, ISO 8601
  std::chrono::system_clock::time_point created;
  std::vector<std::pair<std::string, std::string>> tags;  // in AWS's order

  // The value of the tag `key`; empty when the image has none.
  std::string Tag(std::string_view key) const;
};

// The most recent of `images` by CreationDate (of two equally recent, the greater id, so that
// the choice is the same every time); nullptr when there is none.
const Ec2Image* MostRecent(const std::vector<Ec2Image>& images);

// Thread-safe: calls may be made from several threads at once.
class Ec2Client {
 public:
  // Fails when the endpoint is not http(s)://host[:port] or the region is empty. `http` and
  // `credentials` must outlive the client.
  static Result<std::unique_ptr<Ec2Client>> Create(HttpClient& http,
                                                   CredentialsProvider& credentials,
                                                   Ec2Options options);

  // Every image that matches, all pages of the answer read, in AWS's order. An image whose
  // CreationDate is not a time is an error naming it.
  Result<std::vector<Ec2Image>> DescribeImages(const DescribeImagesRequest& request);

  // Adds (or overwrites) `tags` on every resource of `resource_ids`.
  Status CreateTags(const std::vector<std::string>& resource_ids,
                    const std::vector<std::pair<std::string, std::string>>& tags);

  const std::string& region() const { return aws_->options().region; }

 private:
  explicit Ec2Client(std::unique_ptr<AwsClient> aws);

  std::unique_ptr<AwsClient> aws_;
};

}  // namespace runner::aws
