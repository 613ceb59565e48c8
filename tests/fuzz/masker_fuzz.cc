// The secret masker on a stream cut anywhere: no secret may show in what it releases.
// Input: SECRET NUL [SECRET NUL [SECRET NUL]] TEXT; the last field is the text, the ones before
// it (up to three, the empty ones dropped) are the secrets. The text is fed to
// SecretMasker::Stream in pieces whose sizes come from the input.
#include <cstdint>

#include "runner/masker.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void CheckNoSecret(const std::vector<std::string>& secrets, const std::string& output,
                   const char* how) {
  for (const std::string& secret : secrets) {
    // `*`, `**` and `***` are in the mask itself: nothing could keep them out of the output.
    if (std::string_view("***").find(secret) != std::string_view::npos) continue;
    if (output.find(secret) != std::string::npos) {
      std::string escaped;
      for (unsigned char c : secret) {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        escaped +=
            (c >= 0x20 && c < 0x7f && c != '\\') ? std::string(1, static_cast<char>(c)) : hex;
      }
      runner::fuzz::Fail(std::string("the secret \"") + escaped + "\" shows through " + how);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = runner::fuzz::Fields(runner::fuzz::AsText(data, size), 2);
  std::string_view text = fields.back();
  std::vector<std::string> secrets;
  for (size_t i = 0; i + 1 < fields.size() && secrets.size() < 3; ++i) {
    if (!fields[i].empty()) secrets.emplace_back(fields[i]);
  }
  if (secrets.empty()) return 0;
  runner::SecretMasker masker(secrets);

  CheckNoSecret(secrets, masker.Mask(text), "Mask");
  for (size_t max_piece : {1, 3, 16}) {
    runner::SecretMasker::Stream stream(masker);
    std::string output;
    for (std::string_view piece :
         runner::fuzz::Pieces(text, runner::fuzz::SeedOf(text), max_piece)) {
      output += stream.Feed(piece);
    }
    output += stream.Finish();
    CheckNoSecret(secrets, output, "Stream");
  }
  return 0;
}
