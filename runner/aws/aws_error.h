// An AWS service's answer to a failed request, decoded from any of its protocols: XML
// (`<Error><Code>..</Code><Message>..</Message></Error>` as S3 sends it, inside the Query
// protocol's `<ErrorResponse>` or EC2's `<Response><Errors>`) and JSON (`__type`,
// `message`/`Message`).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runner/aws/http.h"

namespace runner::aws {

struct AwsError {
  int status = 0;          // HTTP status; 0 when no answer came (transport, credentials, cancel)
  std::string code;        // "ThrottlingException", "NoSuchKey"; empty when the body had none
  std::string message;     // the service's message; empty when none
  std::string request_id;  // empty when the answer had none
  // The whole message for a user: "AccessDenied: Access Denied (PUT s3://bkt/k)".
  std::string text;
};

// The error `response` holds: its code, message and request id from the body (XML or JSON) or
// the headers (x-amzn-ErrorType, x-amzn-RequestId, x-amz-request-id). `text` is
// "Code: Message", the code alone, or "HTTP 404 Not Found" when the body names no code.
AwsError DecodeAwsError(const HttpResponse& response);

// The error a 2xx XML body whose root is `<Error>` holds (S3's CompleteMultipartUpload may
// answer 200 with one); nullopt for any other body.
std::optional<AwsError> ErrorInBody(const HttpResponse& response);

// Whether sending the request again may succeed: throttling (429, Throttling, SlowDown,
// RequestLimitExceeded, ...), 5xx, timeouts and the transient S3 codes.
bool IsRetryable(const AwsError& error);

// Whether the error says the credentials were refused (a wrong key or secret).
bool IsCredentialsError(const AwsError& error);

}  // namespace runner::aws
