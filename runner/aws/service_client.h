// What every service client (CloudFormation, Auto Scaling, STS, CodeDeploy, EC2) does to
// make its request layer: its options' region, endpoint and transport, signed as `service`.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runner/aws/aws_client.h"
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

}  // namespace runner::aws
