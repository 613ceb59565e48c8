// Error answers of AWS services (XML and JSON bodies, error headers). Input: the first byte picks
// the status and content type, the rest is the body.
#include <cstdint>

#include "runner/aws/aws_error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr int kStatuses[] = {200, 301, 400, 403, 404, 429, 500, 503};
  constexpr const char* kTypes[] = {"application/xml", "application/x-amz-json-1.1",
                                    "application/json", ""};
  runner::aws::HttpResponse response;
  response.status = kStatuses[data[0] % 8];
  response.headers = {{"content-type", kTypes[(data[0] >> 3) % 4]}};
  if (data[0] & 0x20) response.headers.emplace_back("x-amzn-errortype", "Throttling:http://x/");
  if (data[0] & 0x40) response.headers.emplace_back("x-amz-request-id", "REQ123");
  response.body = std::string(runner::fuzz::AsText(data + 1, size - 1));
  runner::aws::AwsError error = runner::aws::DecodeAwsError(response);
  (void)runner::aws::IsRetryable(error);
  (void)runner::aws::IsCredentialsError(error);
  if (std::optional<runner::aws::AwsError> in_body = runner::aws::ErrorInBody(response)) {
    (void)runner::aws::IsRetryable(*in_body);
  }
  return 0;
}
