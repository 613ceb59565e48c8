// The pipeline loader on arbitrary file text, with the real step kinds so that every kind's
// config schema is fuzzed too, and the diagnostics it produces formatted (quoted line, caret).
#include <cstdint>

#include "runner/diagnostics.h"
#include "runner/pipeline_loader.h"
#include "steps/kinds.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(runner::fuzz::AsText(data, size));
  runner::LoadOptions options;
  options.kinds = &runner::BuiltinKinds();
  options.environment = {{"HOME", "/home/fuzz"}, {"CI", "true"}};
  options.var_overrides = {{"region", "eu-west-1"}};
  runner::Diagnostics diags("pipeline.yml", source);
  std::optional<runner::Pipeline> pipeline =
      runner::ParsePipeline("pipeline.yml", source, options, diags);
  if (pipeline && diags.HasErrors()) runner::fuzz::Fail("a pipeline returned with errors");
  if (!pipeline && !diags.HasErrors()) runner::fuzz::Fail("no pipeline and no error");
  (void)diags.Format();
  return 0;
}
