// Durations as written in pipeline files.
#include <cstdint>

#include "runner/duration.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  runner::Result<runner::Duration> duration =
      runner::ParseDuration(runner::fuzz::AsText(data, size));
  if (duration) {
    // The contract: the result is positive.
    if (duration->count() <= 0) runner::fuzz::Fail("ParseDuration accepted a duration <= 0");
    (void)runner::FormatDuration(*duration);
  }
  return 0;
}
