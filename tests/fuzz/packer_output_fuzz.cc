// Packer's machine-readable stdout, fed in pieces of random size: the log and the artifacts
// must not depend on where the pipe cut the stream.
#include <cstdint>

#include "steps/packer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

struct Parsed {
  std::string log;
  std::vector<runner::PackerArtifact> artifacts;
  std::string last_error;
};

Parsed Parse(const std::vector<std::string_view>& pieces) {
  runner::PackerOutputParser parser;
  Parsed parsed;
  for (std::string_view piece : pieces) parsed.log += parser.Feed(piece);
  parsed.log += parser.Finish();
  parsed.artifacts = parser.artifacts();
  parsed.last_error = parser.last_error();
  return parsed;
}

bool SameArtifacts(const std::vector<runner::PackerArtifact>& a,
                   const std::vector<runner::PackerArtifact>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].build != b[i].build || a[i].index != b[i].index ||
        a[i].builder_id != b[i].builder_id || a[i].id != b[i].id ||
        a[i].description != b[i].description || a[i].files != b[i].files) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = runner::fuzz::AsText(data, size);
  Parsed whole = Parse({text});
  Parsed split = Parse(runner::fuzz::Pieces(text, runner::fuzz::SeedOf(text), 17));
  if (whole.log != split.log) runner::fuzz::Fail("the log depends on the split");
  if (!SameArtifacts(whole.artifacts, split.artifacts)) {
    runner::fuzz::Fail("the artifacts depend on the split");
  }
  if (whole.last_error != split.last_error) runner::fuzz::Fail("the error depends on the split");
  std::vector<runner::PackerArtifact> distinct = runner::DistinctArtifacts(whole.artifacts);
  for (const runner::PackerArtifact& artifact : distinct) (void)runner::ParseAmiList(artifact.id);
  (void)runner::PackerOutputs(whole.artifacts, "eu-west-1");
  (void)runner::ParseMachineReadableLine(text.substr(0, text.find('\n')));
  (void)runner::UnescapeMachineReadable(text);
  return 0;
}
