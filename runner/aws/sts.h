// STS AssumeRole (SPEC section 7, an environment's `role_arn`) on the generic request layer
// (aws_client.h), the Query API version 2011-06-15 signed as "sts", and a CredentialsProvider
// that hands out the role's temporary credentials to the other clients, assuming the role
// again before they expire. The signer sends their session token as X-Amz-Security-Token. The
// secret key and the session token never appear in a message or a log line.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/result.h"

namespace runner::aws {

inline constexpr std::string_view kStsVersion = "2011-06-15";

struct StsOptions : AwsTransportOptions {
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: the regional https://sts.REGION.amazonaws.com.
  std::string endpoint;
};

struct AssumeRoleRequest {
  std::string role_arn;  // "arn:aws:iam::111111111111:role/deployer"
  // Names the session in CloudTrail: 2 to 64 letters, digits and "+=,.@_-".
  std::string session_name;
  // 900 s up to the role's maximum session duration (one hour unless the role says more).
  std::chrono::seconds duration{3600};
};

// Thread-safe: calls may be made from several threads at once.
class StsClient {
 public:
  // Fails when the endpoint is not http(s)://host[:port] or the region is empty. `credentials`
  // are the caller's own, which assume the role. `http` and `credentials` must outlive the
  // client.
  static Result<std::unique_ptr<StsClient>> Create(HttpClient& http,
                                                   CredentialsProvider& credentials,
                                                   StsOptions options);

  // The role's temporary credentials: key id, secret, session token and expiration, with
  // source "STS AssumeRole ROLE_ARN". A failure names the role and AWS's code and message.
  Result<Credentials> AssumeRole(const AssumeRoleRequest& request);

 private:
  explicit StsClient(std::unique_ptr<AwsClient> aws);

  std::unique_ptr<AwsClient> aws_;
};

// The credentials of `request`'s role, assumed through `sts` at the first Get and again once
// they expire within options.refresh_before. When assuming again fails, the cached credentials
// are handed out until they really expire (and STS is asked again at most every 10 s); then the
// failure is returned. Thread-safe. `sts` must outlive the provider.
class AssumeRoleCredentialsProvider : public CredentialsProvider {
 public:
  AssumeRoleCredentialsProvider(StsClient& sts, AssumeRoleRequest request,
                                CredentialsOptions options = {});

  Result<Credentials> Get() override;

 private:
  bool Fresh(const Credentials& credentials, std::chrono::system_clock::time_point now) const;

  StsClient& sts_;
  const AssumeRoleRequest request_;
  const CredentialsOptions options_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
  std::chrono::system_clock::time_point retry_after_{};
};

}  // namespace runner::aws
