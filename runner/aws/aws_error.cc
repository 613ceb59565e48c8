#include "runner/aws/aws_error.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "runner/xml.h"

namespace runner::aws {

namespace {

std::string ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

// `<Error>` anywhere in the document: S3 has it at the root, the Query protocol inside
// <ErrorResponse>, EC2 inside <Response><Errors>.
void DecodeXml(const xml::Document& document, AwsError& error) {
  xml::Element root = document.Root();
  xml::Element element = root.Find("Error");
  error.code = element.ChildText("Code");
  error.message = element.ChildText("Message");
  for (std::string_view name : {"RequestId", "RequestID"}) {
    if (error.request_id.empty()) error.request_id = root.Find(name).Text();
  }
}

// JSON 1.0/1.1 and REST-JSON: {"__type": "prefix#Code", "message": ...}.
bool DecodeJson(std::string_view body, AwsError& error) {
  nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object()) return false;
  for (const char* name : {"__type", "code", "Code"}) {
    if (auto it = json.find(name); it != json.end() && it->is_string() && error.code.empty()) {
      error.code = it->get<std::string>();
    }
  }
  for (const char* name : {"message", "Message", "errorMessage"}) {
    if (auto it = json.find(name); it != json.end() && it->is_string() && error.message.empty()) {
      error.message = it->get<std::string>();
    }
  }
  return !error.code.empty();
}

// "aws.protocoltests#ThrottlingException" and "Code:http://internal.amazon.com/..." name Code.
std::string BareCode(std::string code) {
  if (size_t hash = code.rfind('#'); hash != std::string::npos) code.erase(0, hash + 1);
  if (size_t colon = code.find(':'); colon != std::string::npos) code.erase(colon);
  return code;
}

void Describe(AwsError& error) {
  if (!error.code.empty()) {
    error.text =
        error.message.empty() ? error.code : fmt::format("{}: {}", error.code, error.message);
  } else {
    error.text = fmt::format("HTTP {} {}", error.status, ReasonPhrase(error.status));
    while (error.text.ends_with(' ')) error.text.pop_back();
  }
}

}  // namespace

AwsError DecodeAwsError(const HttpResponse& response) {
  AwsError error;
  error.status = response.status;
  std::string_view body = response.body;
  size_t start = body.find_first_not_of(" \t\r\n");
  if (start != std::string_view::npos) {
    if (body[start] == '<') {
      if (auto document = xml::Document::Parse(body)) DecodeXml(*document, error);
    } else if (body[start] == '{') {
      DecodeJson(body, error);
    }
  }
  if (error.code.empty()) error.code = response.Header("x-amzn-errortype");
  error.code = BareCode(error.code);
  for (std::string_view name : {"x-amzn-requestid", "x-amz-request-id"}) {
    if (error.request_id.empty()) error.request_id = response.Header(name);
  }
  Describe(error);
  return error;
}

std::optional<AwsError> ErrorInBody(const HttpResponse& response) {
  auto document = xml::Document::Parse(response.body);
  if (!document || document->Root().Name() != "Error") return std::nullopt;
  AwsError error;
  error.status = response.status;
  DecodeXml(*document, error);
  Describe(error);
  return error;
}

bool IsRetryable(const AwsError& error) {
  // ConditionalRequestConflict (409): a conditional write raced another on the same key; AWS
  // says to retry it.
  static constexpr std::array<std::string_view, 17> kCodes = {
      "SlowDown",
      "Throttling",
      "ThrottlingException",
      "ThrottledException",
      "RequestLimitExceeded",
      "RequestThrottled",
      "RequestThrottledException",
      "TooManyRequestsException",
      "ProvisionedThroughputExceededException",
      "TransactionInProgressException",
      "PriorRequestNotComplete",
      "InternalError",
      "ServiceUnavailable",
      "RequestTimeout",
      "BadDigest",
      "IncompleteBody",
      "ConditionalRequestConflict"};
  if (error.status == 0 || error.status >= 500 || error.status == 429) return true;
  return std::find(kCodes.begin(), kCodes.end(), error.code) != kCodes.end();
}

bool IsCredentialsError(const AwsError& error) {
  static constexpr std::array<std::string_view, 5> kCodes = {
      "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId",
      "UnrecognizedClientException", "InvalidSignatureException"};
  return std::find(kCodes.begin(), kCodes.end(), error.code) != kCodes.end();
}

}  // namespace runner::aws
