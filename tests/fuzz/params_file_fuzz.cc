// A params file in any of its three formats, rendered back in each.
#include <cstdint>

#include "steps/params.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = runner::ParseParamsFile(runner::fuzz::AsText(data, size), "params.json");
  if (!file) return 0;
  for (runner::ParamsFormat format :
       {runner::ParamsFormat::kCloudFormation, runner::ParamsFormat::kCodePipeline,
        runner::ParamsFormat::kPlain}) {
    (void)runner::CheckParamsValues(*file, format);
    runner::Result<std::string> rendered = runner::RenderParamsFile(*file, format);
    if (!rendered) continue;
    // What the runner writes it can read back, with the same parameters.
    auto again = runner::ParseParamsFile(*rendered, "rendered.json");
    if (!again) runner::fuzz::Fail("a rendered params file does not parse: " + again.error());
    if (again->parameters.entries() != file->parameters.entries()) {
      runner::fuzz::Fail("a rendered params file does not give back its parameters");
    }
  }
  return 0;
}
