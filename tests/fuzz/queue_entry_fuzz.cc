// A build's queue entry, as serve and the workers read it back from the records (a directory or
// a shared bucket others write): what decodes encodes, and decodes back the same.
#include <cstdint>

#include "runner/serve/build_queue.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto entry = runner::serve::EntryFromJson(runner::fuzz::AsText(data, size), "fuzz");
  if (!entry) return 0;
  std::string encoded = runner::serve::EntryToJson(*entry);
  auto again = runner::serve::EntryFromJson(encoded, "fuzz");
  if (!again) runner::fuzz::Fail("an encoded queue entry does not decode: " + again.error());
  if (runner::serve::EntryToJson(*again) != encoded) {
    runner::fuzz::Fail("an encoded queue entry does not decode the same");
  }
  return 0;
}
