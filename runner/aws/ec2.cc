#include "runner/aws/ec2.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "runner/aws/query_api.h"
#include "runner/aws/service_client.h"
#include "runner/xml.h"

namespace runner::aws {

namespace {

// The most images one DescribeImages page holds; AWS allows 5 to 1000 (and no MaxResults with
// ImageId).
constexpr std::string_view kPageSize = "1000";

// What a request is about, for messages: "EC2 DescribeImages in eu-west-1 (owners self,
// name=app-*)".
std::string Describe(const DescribeImagesRequest& request, const std::string& region) {
  std::vector<std::string> parts;
  if (!request.owners.empty()) {
    parts.push_back(fmt::format("owners {}", fmt::join(request.owners, ",")));
  }
  if (!request.image_ids.empty())
    parts.push_back(fmt::format("{}", fmt::join(request.image_ids, ",")));
  for (const Ec2Filter& filter : request.filters) {
    parts.push_back(fmt::format("{}={}", filter.name, fmt::join(filter.values, ",")));
  }
  return fmt::format("EC2 DescribeImages in {}{}", region,
                     parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", ")));
}

Pairs DescribeImagesParams(const DescribeImagesRequest& request) {
  Pairs params;
  for (size_t i = 0; i < request.owners.size(); ++i) {
    params.emplace_back(fmt::format("Owner.{}", i + 1), request.owners[i]);
  }
  for (size_t i = 0; i < request.image_ids.size(); ++i) {
    params.emplace_back(fmt::format("ImageId.{}", i + 1), request.image_ids[i]);
  }
  for (size_t i = 0; i < request.filters.size(); ++i) {
    const Ec2Filter& filter = request.filters[i];
    params.emplace_back(fmt::format("Filter.{}.Name", i + 1), filter.name);
    for (size_t j = 0; j < filter.values.size(); ++j) {
      params.emplace_back(fmt::format("Filter.{}.Value.{}", i + 1, j + 1), filter.values[j]);
    }
  }
  if (request.image_ids.empty()) params.emplace_back("MaxResults", std::string(kPageSize));
  return params;
}

Result<Ec2Image> ReadImage(const xml::Element& item, std::string_view what) {
  Ec2Image image;
  image.id = item.ChildText("imageId");
  image.name = item.ChildText("name");
  image.state = item.ChildText("imageState");
  image.owner_id = item.ChildText("imageOwnerId");
  image.creation_date = item.ChildText("creationDate");
  auto created = ChildTime(item, "creationDate", fmt::format("{}: image {}", what, image.id));
  if (!created) return Fail(created.error());
  if (*created) image.created = **created;
  for (const xml::Element& tag : item.Child("tagSet").Children("item")) {
    image.tags.emplace_back(tag.ChildText("key"), tag.ChildText("value"));
  }
  return image;
}

}  // namespace

std::string Ec2Image::Tag(std::string_view key) const {
  for (const auto& [name, value] : tags) {
    if (name == key) return value;
  }
  return {};
}

const Ec2Image* MostRecent(const std::vector<Ec2Image>& images) {
  if (images.empty()) return nullptr;
  return &*std::max_element(images.begin(), images.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created, a.id) < std::tie(b.created, b.id);
  });
}

Result<std::unique_ptr<Ec2Client>> Ec2Client::Create(HttpClient& http,
                                                     CredentialsProvider& credentials,
                                                     Ec2Options options) {
  auto client = CreateServiceClient(http, credentials, "ec2", "EC2", options);
  if (!client) return Fail(client.error());
  return std::unique_ptr<Ec2Client>(new Ec2Client(std::move(*client)));
}

Ec2Client::Ec2Client(std::unique_ptr<AwsClient> aws) : aws_(std::move(aws)) {}

Result<std::vector<Ec2Image>> Ec2Client::DescribeImages(const DescribeImagesRequest& request) {
  const std::string what = Describe(request, region());
  const Pairs params = DescribeImagesParams(request);
  std::vector<Ec2Image> images;
  std::string next_token;
  for (bool first = true; first || !next_token.empty(); first = false) {
    Pairs page = params;
    if (!next_token.empty()) page.emplace_back("NextToken", next_token);
    auto answer = SendEc2Query(*aws_, "DescribeImages", kEc2Version, page, what);
    if (!answer) return Fail(std::move(answer.error().text));
    for (const xml::Element& item : answer->result.Child("imagesSet").Children("item")) {
      auto image = ReadImage(item, what);
      if (!image) return Fail(image.error());
      images.push_back(std::move(*image));
    }
    std::string token = answer->result.ChildText("nextToken");
    if (!token.empty() && token == next_token) {
      return Fail(fmt::format("{}: nextToken '{}' repeats", what, token));
    }
    next_token = std::move(token);
  }
  return images;
}

Status Ec2Client::CreateTags(const std::vector<std::string>& resource_ids,
                             const std::vector<std::pair<std::string, std::string>>& tags) {
  Pairs params;
  for (size_t i = 0; i < resource_ids.size(); ++i) {
    params.emplace_back(fmt::format("ResourceId.{}", i + 1), resource_ids[i]);
  }
  for (size_t i = 0; i < tags.size(); ++i) {
    params.emplace_back(fmt::format("Tag.{}.Key", i + 1), tags[i].first);
    params.emplace_back(fmt::format("Tag.{}.Value", i + 1), tags[i].second);
  }
  const std::string what =
      fmt::format("EC2 CreateTags {} in {}", fmt::join(resource_ids, ","), region());
  auto answer = SendEc2Query(*aws_, "CreateTags", kEc2Version, params, what);
  if (!answer) return Fail(std::move(answer.error().text));
  return {};
}

}  // namespace runner::aws
