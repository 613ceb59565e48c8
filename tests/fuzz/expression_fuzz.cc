// `${{ name }}` templates: parsing and expansion.
#include <cstdint>

#include "runner/expression.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = runner::fuzz::AsText(data, size);
  auto parts = runner::ParseTemplate(text);
  if (parts) {
    size_t last = 0;
    for (const runner::TemplatePart& part : *parts) {
      if (part.offset > text.size() || part.offset < last) {
        runner::fuzz::Fail("a part's offset is outside the text or out of order");
      }
      last = part.offset;
    }
  } else if (parts.error().offset > text.size()) {
    runner::fuzz::Fail("the error's offset is outside the text");
  }
  (void)runner::HasExpression(text);
  (void)runner::ExpandTemplate(text, [](std::string_view name) -> std::optional<std::string> {
    if (name.starts_with("unknown")) return std::nullopt;
    return "<" + std::string(name) + ">";
  });
  return 0;
}
