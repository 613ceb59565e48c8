// What every service client (CloudFormation, Auto Scaling, STS, CodeDeploy, EC2) does to
// make its request layer: its options' region, endpoint and transport, signed as `service`.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner::aws {

// The AwsClient for a client of `service` ("ec2") with `options` (which have the transport
// options, `region` and `endpoint`); an error is led by the service's `name` ("EC2: ...").
template <class Options>
Result<std::unique_ptr<AwsClient>> CreateServiceClient(HttpClient& http,
                                                       CredentialsProvider& credentials,
                                                       std::string_view service,
                                                       std::string_view name,
                                                       const Options& options) {
  AwsClientOptions aws;
  static_cast<AwsTransportOptions&>(aws) = options;
  aws.service = std::string(service);
  aws.region = options.region;
  aws.endpoint = options.endpoint;
  auto client = AwsClient::Create(http, credentials, std::move(aws));
  if (!client) return Fail(std::string(name) + ": " + client.error());
  return client;
}

// The HTTP client and credentials the clients of one task share: the caller's when given; else
// a curl client (trusting AWS_CA_BUNDLE of `env` when set, as the AWS CLI does) and `env`'s
// default credentials chain, owned here. Must outlive the clients made with it.
struct AwsConnection {
  HttpClient* http = nullptr;
  CredentialsProvider* credentials = nullptr;
  std::unique_ptr<HttpClient> owned_http;
  std::unique_ptr<CredentialsProvider> owned_credentials;
};
AwsConnection ConnectAws(const Environment& env, HttpClient* http = nullptr,
                         CredentialsProvider* credentials = nullptr);

// A JSON-protocol call (JsonRequest): sends OPERATION of `target_prefix` with `body` and parses
// the answer, an object (`{}` for an empty body). `what` names the request in messages ("SQS
// SendMessage QUEUE"); the answer is never quoted in one: it is AWS's, and may be large.
struct JsonCall {
  std::string_view target_prefix;  // "AmazonSQS", "CodeDeploy_20141006"
  std::string_view version = "1.1";
  std::chrono::milliseconds timeout{0};  // 0: the client's
};
Result<nlohmann::json> CallJson(AwsClient& aws, const JsonCall& call, std::string_view operation,
                                const nlohmann::json& body, std::string what);

// The member `key` of a JSON answer when it is a string; else an empty one (services leave out,
// or send null for, whatever does not apply).
std::string JsonString(const nlohmann::json& object, std::string_view key);

}  // namespace runner::aws
