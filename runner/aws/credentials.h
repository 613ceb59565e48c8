// Where AWS credentials and the region come from (SPEC section 6, upload): the environment,
// the shared config and credentials files with profiles, ECS container credentials, then EC2
// instance metadata (IMDSv2), in that order, as the AWS SDKs do.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "runner/aws/http.h"
#include "runner/aws/sigv4.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner::aws {

class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Current credentials; temporary ones are fetched again shortly before they expire.
  // Thread-safe. Fails naming every source tried and why each gave nothing.
  virtual Result<Credentials> Get() = 0;
};

// The default chain, reading `env` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, HOME,
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN,
// AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT) and using `http` for the
// container and instance metadata endpoints. `http` must outlive the provider.
std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsChain(const Environment& env,
                                                                 HttpClient& http);

// How the chain caches and refreshes temporary credentials.
struct CredentialsOptions {
  // Temporary credentials are fetched again once they expire within this window; should the
  // fetch fail, the cached ones are used until they really expire.
  std::chrono::seconds refresh_before = std::chrono::minutes(5);
  // The clock compared with Expiration (tests move it).
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// The default chain with explicit options. Same contract as above.
std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsChain(const Environment& env,
                                                                 HttpClient& http,
                                                                 CredentialsOptions options);

// A time as AWS writes it, ISO 8601 in UTC or with a numeric offset: "2024-05-01T12:34:56Z",
// "2024-05-01T12:34:56.123456Z" (the fraction dropped), "2024-05-01T14:34:56+02:00". Used for
// the Expiration of temporary credentials and the times in Query-protocol answers.
Result<std::chrono::system_clock::time_point> ParseIsoTime(const std::string& text);

// The region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the config file, else
// us-east-1.
std::string DefaultRegion(const Environment& env);

}  // namespace runner::aws
