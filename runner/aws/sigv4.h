// AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html):
// the header form and the presigned (query) form, with S3's rules available.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runner::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty when none
  // When temporary credentials stop working; nullopt for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
  // Where they came from, for messages ("environment", "profile 'ci' in ~/.aws/credentials",
  // "EC2 instance metadata"). Never the secret.
  std::string source;
};

// x-amz-content-sha256 for a body that is not hashed into the signature (S3 over TLS).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

using Pairs = std::vector<std::pair<std::string, std::string>>;

// A request as it will be sent, before signing.
struct SignableRequest {
  std::string method;  // "GET", "PUT", ...
  // The path exactly as sent on the wire, already percent-encoded (e.g. "/bucket/my%20key").
  std::string path;
  Pairs query;    // decoded names and values, in any order; encoded by the signer
  Pairs headers;  // as sent (any case, any order); must include "host"
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" (S3 only).
  std::string payload_sha256;
};

struct SigningParams {
  std::string region;   // "us-east-1"
  std::string service;  // "s3", "sts", "service", ...
  std::chrono::system_clock::time_point time;
  // S3 signs the path as sent: no normalization of `.`/`..`/`//`, no second encoding.
  // Other services normalize and encode the encoded path again.
  bool s3_rules = false;
  // Outside S3 only: whether `.`, `..` and empty segments are removed from the path before it
  // is encoded. Every service but S3 expects it; false signs the path as given (encoded once
  // more), as AWS's test suite's `normalize: false` cases do. Ignored with s3_rules.
  bool normalize_path = true;
};

// Percent-encodes per SigV4: unreserved (A-Z a-z 0-9 - _ . ~) kept, everything else %XX
// (uppercase hex); '/' kept when `keep_slash`.
std::string UriEncode(std::string_view text, bool keep_slash);

// The pieces of the signature, exposed so tests can compare with AWS's test suite.
std::string CanonicalRequest(const SignableRequest& request, const SigningParams& params,
                             std::string_view signed_headers_list);
std::string StringToSign(std::string_view canonical_request, const SigningParams& params);
std::string Signature(std::string_view string_to_sign, const Credentials& credentials,
                      const SigningParams& params);

// Header form: returns the headers to add to the request: X-Amz-Date, Authorization,
// X-Amz-Security-Token (when a session token is set) and, with s3_rules,
// x-amz-content-sha256 (added before signing, so it is signed).
Pairs SignHeaders(const SignableRequest& request, const Credentials& credentials,
                  const SigningParams& params);

// Presigned form: returns the query parameters to add (X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Security-Token, X-Amz-Signature).
// Names and values are decoded, like SignableRequest::query: the URL carries them encoded with
// UriEncode(..., false). An empty payload_sha256 signs as UNSIGNED-PAYLOAD with s3_rules.
Pairs PresignQuery(const SignableRequest& request, const Credentials& credentials,
                   const SigningParams& params, std::chrono::seconds expires);

}  // namespace runner::aws
