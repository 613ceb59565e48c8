#include "runner/aws/sts.h"

#include <fmt/format.h>

#include "runner/aws/query_api.h"
#include "runner/aws/service_client.h"
#include "runner/xml.h"

namespace runner::aws {

namespace {

using std::chrono::system_clock;

// After a failed refresh, STS is not asked again for this long while the cached credentials
// still work, so that parallel requests do not each wait for STS.
constexpr std::chrono::seconds kRefreshBackoff{10};

}  // namespace

Result<std::unique_ptr<StsClient>> StsClient::Create(HttpClient& http,
                                                     CredentialsProvider& credentials,
                                                     StsOptions options) {
  auto client = CreateServiceClient(http, credentials, "sts", "STS", options);
  if (!client) return Fail(client.error());
  return std::unique_ptr<StsClient>(new StsClient(std::move(*client)));
}

StsClient::StsClient(std::unique_ptr<AwsClient> aws) : aws_(std::move(aws)) {}

Result<Credentials> StsClient::AssumeRole(const AssumeRoleRequest& request) {
  const std::string what = fmt::format("STS AssumeRole {}", request.role_arn);
  auto answer = SendQuery(*aws_, "AssumeRole", kStsVersion,
                          {{"RoleArn", request.role_arn},
                           {"RoleSessionName", request.session_name},
                           {"DurationSeconds", std::to_string(request.duration.count())}},
                          what);
  if (!answer) return Fail(std::move(answer.error().text));
  xml::Element element = answer->result.Child("Credentials");
  Credentials credentials;
  credentials.access_key_id = element.ChildText("AccessKeyId");
  credentials.secret_access_key = element.ChildText("SecretAccessKey");
  credentials.session_token = element.ChildText("SessionToken");
  // Which fields are missing, never their values.
  for (auto [value, name] : {std::pair{&credentials.access_key_id, "AccessKeyId"},
                             std::pair{&credentials.secret_access_key, "SecretAccessKey"},
                             std::pair{&credentials.session_token, "SessionToken"}}) {
    if (value->empty()) return Fail(fmt::format("{}: the answer holds no {}", what, name));
  }
  auto expiration = ChildTime(element, "Expiration", what);
  if (!expiration) return Fail(expiration.error());
  if (!*expiration) return Fail(fmt::format("{}: the answer holds no Expiration", what));
  credentials.expiration = **expiration;
  credentials.source = what;
  return credentials;
}

AssumeRoleCredentialsProvider::AssumeRoleCredentialsProvider(StsClient& sts,
                                                             AssumeRoleRequest request,
                                                             CredentialsOptions options)
    : sts_(sts), request_(std::move(request)), options_(std::move(options)) {}

bool AssumeRoleCredentialsProvider::Fresh(const Credentials& credentials,
                                          system_clock::time_point now) const {
  return now + options_.refresh_before < *credentials.expiration;
}

Result<Credentials> AssumeRoleCredentialsProvider::Get() {
  std::lock_guard lock(mutex_);
  const system_clock::time_point now = options_.now();
  if (cached_ && (Fresh(*cached_, now) || now < retry_after_)) return *cached_;
  Result<Credentials> assumed = sts_.AssumeRole(request_);
  if (!assumed) {
    // A failed refresh is no reason to drop credentials that still work.
    if (cached_ && now < *cached_->expiration) {
      retry_after_ = now + kRefreshBackoff;
      return *cached_;
    }
    return assumed;
  }
  cached_ = std::move(*assumed);
  // Credentials shorter-lived than refresh_before would otherwise be assumed again each time.
  if (!Fresh(*cached_, now)) retry_after_ = now + kRefreshBackoff;
  return *cached_;
}

}  // namespace runner::aws
