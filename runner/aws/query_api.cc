#include "runner/aws/query_api.h"

#include <fmt/format.h>

#include "runner/aws/credentials.h"

namespace runner::aws {

namespace {

// Sends the request and parses its answer, whose result element is named `result_name`, either
// the root itself or a child of it.
AwsResult<QueryAnswer> Send(AwsClient& aws, std::string_view action, std::string_view version,
                            const Pairs& params, std::string what, const std::string& result_name) {
  AwsRequest request = QueryRequest(action, version, params);
  request.what = std::move(what);
  AwsResult<HttpResponse> response = aws.Send(request);
  if (!response) return std::unexpected(std::move(response.error()));
  auto failure = [&](std::string_view why) {
    AwsError error;
    error.status = response->status;
    error.text = fmt::format("{}: {}", request.what, why);
    return std::unexpected(std::move(error));
  };
  // libxml2's reason may quote the body, and an STS answer holds a secret: it is left out.
  Result<xml::Document> document = xml::Document::Parse(response->body);
  if (!document) return failure("the answer is not well-formed XML");
  xml::Element root = document->Root();
  xml::Element result = root.Name() == result_name ? root : root.Child(result_name);
  if (!result) return failure(fmt::format("the answer holds no {}", result_name));
  return QueryAnswer{std::move(*document), result};
}

}  // namespace

AwsResult<QueryAnswer> SendQuery(AwsClient& aws, std::string_view action, std::string_view version,
                                 const Pairs& params, std::string what) {
  return Send(aws, action, version, params, std::move(what), fmt::format("{}Result", action));
}

AwsResult<QueryAnswer> SendEc2Query(AwsClient& aws, std::string_view action,
                                    std::string_view version, const Pairs& params,
                                    std::string what) {
  return Send(aws, action, version, params, std::move(what), fmt::format("{}Response", action));
}

Result<std::optional<std::chrono::system_clock::time_point>> ChildTime(const xml::Element& element,
                                                                       std::string_view name,
                                                                       std::string_view what) {
  xml::Element child = element.Child(name);
  if (!child) return std::nullopt;
  Result<std::chrono::system_clock::time_point> time = ParseIsoTime(child.Text());
  if (!time) return Fail(fmt::format("{}: {}: {}", what, name, time.error()));
  return *time;
}

}  // namespace runner::aws
