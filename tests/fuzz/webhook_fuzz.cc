// GitHub deliveries (runner/serve/webhook.h): input is CONTENT_TYPE NUL BODY. Whatever the body,
// the payload decoders either fail or give what the server relies on.
#include <cstdint>
#include <string>

#include "runner/serve/webhook.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

bool IsHexCommit(std::string_view sha) {
  return sha.size() == 40 && sha.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = runner::fuzz::Fields(runner::fuzz::AsText(data, size), 2);
  std::string_view content_type = fields[0];
  std::string_view body = fields[1];
  // A wrong signature is never accepted, whatever the body.
  if (runner::serve::CheckSignature(body, "secret", "sha256=" + std::string(64, '0'), false) ==
      runner::serve::SignatureCheck::kOk) {
    runner::fuzz::Fail("an all-zero signature was accepted");
  }
  auto json = runner::serve::PayloadJson(content_type, body);
  if (!json) return 0;
  (void)runner::serve::DeliveryRepository(*json);
  auto push = runner::serve::ParsePushEvent(*json);
  if (!push) return 0;
  if (!IsHexCommit(push->before) || !IsHexCommit(push->after)) {
    runner::fuzz::Fail("a push was parsed with a commit that is not 40 lowercase hex digits");
  }
  std::string_view prefix = push->tag ? "refs/tags/" : "refs/heads/";
  if (!push->ref.starts_with(prefix) || push->ref.substr(prefix.size()) != push->name) {
    runner::fuzz::Fail("a push's name is not its ref without refs/heads/ or refs/tags/");
  }
  return 0;
}
