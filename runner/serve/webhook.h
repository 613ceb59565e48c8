// GitHub webhook deliveries exactly as GitHub sends them: the X-Hub-Signature-256 check, JSON and
// form-encoded bodies, and the `push` event (docs.github.com, "Webhook events and payloads").
//
// Order of use on a delivery: DeliveryRepository (to choose the repository's secret), then
// CheckSignature over the raw body, and only then ParsePushEvent. DeliveryRepository reads
// unauthenticated input and builds no document: its memory does not grow with the body.
#pragma once

#include <string>
#include <string_view>

#include "runner/result.h"

namespace runner::serve {

enum class SignatureCheck { kOk, kMissing, kSha1Only, kMalformed, kMismatch };

// Checks X-Hub-Signature-256 ("sha256=" followed by the 64 lowercase hex digits of
// HMAC-SHA256(secret, raw_body)) in constant time. `sha1_header_present`: X-Hub-Signature was
// sent; on its own it is refused (kSha1Only), SHA-1 signatures are never checked. An empty
// secret matches nothing (kMismatch).
SignatureCheck CheckSignature(std::string_view raw_body, std::string_view secret,
                              std::string_view signature_256_header, bool sha1_header_present);

// What went wrong, for the 401 answer's body; kOk too, for completeness.
std::string_view DescribeSignatureCheck(SignatureCheck check);

// The payload's JSON text from a delivery's Content-Type and body: the body itself for
// application/json (parameters such as charset allowed), the percent-decoded `payload` field
// (+ is a space) for application/x-www-form-urlencoded, whatever its size. Any other type, or
// a form without `payload`, is an error naming it.
Result<std::string> PayloadJson(std::string_view content_type, std::string_view raw_body);

struct PushEvent {
  std::string repository;      // repository.full_name, "owner/name"
  std::string clone_url;       // repository.clone_url
  std::string default_branch;  // repository.default_branch (may be empty)
  std::string ref;             // refs/heads/NAME or refs/tags/NAME
  std::string name;            // the branch or tag name
  bool tag = false;
  // 40 lowercase hex digits; all zeros for `before` on a new ref and `after` on a deletion.
  // For an annotated tag `after` is the tag object (the checkout peels it).
  std::string before, after;
  bool created = false, deleted = false;
  std::string head_message;  // head_commit.message; empty when head_commit is null
  std::string pusher;        // pusher.name
};

// Parses a `push` delivery's JSON. Errors say which field is missing or wrong ("push payload:
// 'after' must be a 40-character hex commit id"). A deletion (deleted: true, after all zeros)
// parses: the caller ignores it. A ref outside refs/heads/ and refs/tags/ is an error.
Result<PushEvent> ParsePushEvent(std::string_view json);

// Whether `sha` is all zeros (how GitHub spells "no commit" in `before` and `after`).
bool IsZeroCommit(std::string_view sha);

// repository.full_name of any delivery (ping, push), read before the signature is checked to
// find the repository's secret; empty when the delivery has no repository (a ping from an
// organisation's hook). Safe on hostile input: nesting is bounded, nothing is kept but the name,
// and a payload with two `repository` or two `full_name` members is refused, so that the name
// found here is the one ParsePushEvent sees.
Result<std::string> DeliveryRepository(std::string_view json);

}  // namespace runner::serve
