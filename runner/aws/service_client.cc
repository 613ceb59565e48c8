#include "runner/aws/service_client.h"

#include <fmt/format.h>

namespace runner::aws {

AwsConnection ConnectAws(const Environment& env, HttpClient* http,
                         CredentialsProvider* credentials) {
  AwsConnection connection;
  connection.http = http;
  connection.credentials = credentials;
  if (connection.http == nullptr) {
    CurlHttpOptions options;
    if (auto bundle = Lookup(env, "AWS_CA_BUNDLE")) options.ca_bundle = *bundle;
    connection.owned_http = MakeCurlHttpClient(options);
    connection.http = connection.owned_http.get();
  }
  if (connection.credentials == nullptr) {
    connection.owned_credentials = MakeDefaultCredentialsChain(env, *connection.http);
    connection.credentials = connection.owned_credentials.get();
  }
  return connection;
}

Result<nlohmann::json> CallJson(AwsClient& aws, const JsonCall& call, std::string_view operation,
                                const nlohmann::json& body, std::string what) {
  AwsRequest request = JsonRequest(call.target_prefix, operation, body.dump(), call.version);
  request.what = std::move(what);
  request.timeout = call.timeout;
  AwsResult<HttpResponse> response = aws.Send(request);
  if (!response) return Fail(std::move(response.error().text));
  if (response->body.empty()) return nlohmann::json::object();
  nlohmann::json answer =
      nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object()) {
    return Fail(fmt::format("{}: the answer is not a JSON object", request.what));
  }
  return answer;
}

std::string JsonString(const nlohmann::json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace runner::aws
