// appspec.yml of a CodeDeploy revision, checked against a fixed archive listing.
#include <cstdint>

#include "runner/diagnostics.h"
#include "steps/codedeploy.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  runner::Revision revision;
  revision.has_appspec = true;
  revision.appspec = std::string(runner::fuzz::AsText(data, size));
  revision.files["appspec.yml"] = {false, false, "version: 0.0\n"};
  revision.files["bin"] = {true, true, ""};
  revision.files["bin/orders"] = {false, true,
                                  "\x7f"
                                  "ELF"};
  revision.files["scripts"] = {true, true, ""};
  revision.files["scripts/start.sh"] = {false, true, "#!/bin/sh\nexec true\n"};
  revision.files["scripts/stop.sh"] = {false, false, "echo no shebang\n"};
  revision.files["build.json"] = {false, false, "{}"};
  runner::Diagnostics diags("appspec.yml", revision.appspec);
  runner::ValidateAppSpec(revision, diags);
  (void)diags.Format();
  return 0;
}
