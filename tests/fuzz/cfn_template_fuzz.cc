// The Parameters section of a CloudFormation template (JSON or YAML with short-form tags).
#include <cstdint>

#include "steps/params.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parameters =
      runner::ParseTemplateParameters(runner::fuzz::AsText(data, size), "cfn/template.yaml");
  if (parameters) {
    runner::OrderedParams params;
    for (const runner::TemplateParameter& parameter : *parameters) {
      if (!parameter.allowed_values.empty())
        params.Set(parameter.name, parameter.allowed_values[0]);
    }
    std::vector<std::string> warnings;
    (void)runner::CheckAgainstTemplate(params, *parameters, "cfn/template.yaml",
                                       runner::ParamsFormat::kCloudFormation, warnings);
  }
  return 0;
}
