// The step outputs file (RUNNER_OUTPUT). The input is parsed as a file, and every value parsed
// is written back the way a step writes it (`runner __step`: a NAME<<DELIMITER block, LF line
// endings) and must read back unchanged; the input as a value of its own must too.
#include <cstdint>

#include "runner/step_outputs.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::string Written(const runner::Outputs& outputs) {
  std::string file;
  for (const auto& [name, value] : outputs) {
    std::string delimiter = "RUNNER_EOF_1";
    while (value.find(delimiter) != std::string::npos) delimiter += "1";
    file += name + "<<" + delimiter + "\n" + value + "\n" + delimiter + "\n";
  }
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = runner::fuzz::AsText(data, size);
  runner::Outputs value = {{"value", std::string(text)}};
  runner::Result<runner::Outputs> read = runner::ParseStepOutputs(Written(value));
  if (!read || *read != value) runner::fuzz::Fail("a value written as a block reads back changed");

  runner::Result<runner::Outputs> outputs = runner::ParseStepOutputs(text);
  if (!outputs) return 0;
  runner::Result<runner::Outputs> again = runner::ParseStepOutputs(Written(*outputs));
  if (!again) runner::fuzz::Fail("written outputs do not parse: " + again.error());
  if (*again != *outputs) runner::fuzz::Fail("written outputs do not read back the same");
  return 0;
}
