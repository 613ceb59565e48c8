// manifest.json, as a deploy reads it from a store: what parses renders, and reads back the same.
#include <cstdint>

#include "runner/store/manifest.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto manifest = runner::ParseManifest(runner::fuzz::AsText(data, size), "manifest.json");
  if (!manifest) return 0;
  std::string rendered = runner::RenderManifest(*manifest);
  auto again = runner::ParseManifest(rendered, "rendered.json");
  if (!again) runner::fuzz::Fail("a rendered manifest does not parse: " + again.error());
  if (runner::RenderManifest(*again) != rendered) {
    runner::fuzz::Fail("a rendered manifest does not read back the same");
  }
  return 0;
}
