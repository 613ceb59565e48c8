// Calls of the Query protocol (CloudFormation, Auto Scaling, STS, EC2) and their XML answers:
// `<ACTIONResponse><ACTIONResult>...</ACTIONResult><ResponseMetadata>...</ACTIONResponse>`, and
// EC2's dialect, whose fields sit right in `<ACTIONResponse>`.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "runner/aws/aws_client.h"
#include "runner/result.h"
#include "runner/xml.h"

namespace runner::aws {

// An answer parsed; `result` is its <ACTIONResult> element, valid while `document` lives.
struct QueryAnswer {
  xml::Document document;
  xml::Element result;
};

// Sends QueryRequest(action, version, params) through `aws`, named `what` in messages
// ("CloudFormation DescribeStacks orders-stg"), and parses the answer. A failed request is
// the AwsError of AwsClient::Send; an answer that is not XML or holds no <ACTIONResult> is an
// AwsError (status 200, no code) whose text says so and never quotes the body, which may hold
// a secret.
AwsResult<QueryAnswer> SendQuery(AwsClient& aws, std::string_view action, std::string_view version,
                                 const Pairs& params, std::string what);

// As SendQuery for EC2, whose answer has no <ACTIONResult>: `result` is its <ACTIONResponse>.
AwsResult<QueryAnswer> SendEc2Query(AwsClient& aws, std::string_view action,
                                    std::string_view version, const Pairs& params,
                                    std::string what);

// The time in the child `name` of `element` (ParseIsoTime); nullopt when there is no such
// child; an error naming `what` and the field when the text is not a time.
Result<std::optional<std::chrono::system_clock::time_point>> ChildTime(const xml::Element& element,
                                                                       std::string_view name,
                                                                       std::string_view what);

}  // namespace runner::aws
