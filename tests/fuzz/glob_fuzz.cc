// Glob patterns: input is PATTERN NUL TEXT.
#include <cstdint>

#include "runner/glob.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = runner::fuzz::Fields(runner::fuzz::AsText(data, size), 2);
  std::string_view pattern = fields[0];
  std::string_view text = fields[1];
  (void)runner::GlobMatch(pattern, text);
  // A pattern without glob syntax is a plain name, and a plain name matches itself.
  if (!runner::HasGlobSyntax(pattern) && !runner::GlobMatch(pattern, pattern)) {
    runner::fuzz::Fail("a pattern without glob syntax does not match itself");
  }
  // `*` and `**` match any name without and with slashes.
  if (text.find('/') == std::string_view::npos && !runner::GlobMatch("*", text) && !text.empty()) {
    runner::fuzz::Fail("'*' does not match a name without '/'");
  }
  return 0;
}
