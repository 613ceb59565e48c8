// XML documents as S3 answers them, read with the element accessors the client uses.
#include <cstdint>

#include "runner/xml.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void Walk(const runner::xml::Element& element, int depth) {
  if (!element || depth > 64) return;
  (void)element.Name();
  (void)element.Text();
  (void)element.ChildText("Key");
  for (const runner::xml::Element& child : element.Children()) Walk(child, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = runner::fuzz::AsText(data, size);
  auto document = runner::xml::Document::Parse(text, 1 << 20);
  if (document) {
    runner::xml::Element root = document->Root();
    Walk(root, 0);
    for (const runner::xml::Element& contents : root.FindAll("Contents")) {
      (void)contents.ChildText("Key");
      (void)contents.ChildText("Size");
    }
    (void)root.Find("UploadId").Text();
  }
  // Any text made valid XML text is written and read back as the same text.
  std::string valid = runner::xml::ValidXmlText(text);
  runner::xml::Writer writer;
  writer.Start("Root").Element("Key", valid).End();
  runner::Result<std::string> written = writer.Finish();
  if (!written) runner::fuzz::Fail("the writer refused valid XML text: " + written.error());
  auto again = runner::xml::Document::Parse(*written);
  if (!again) runner::fuzz::Fail("the writer's document does not parse: " + again.error());
  if (again->Root().ChildText("Key") != valid) {
    runner::fuzz::Fail("text written to XML does not read back the same");
  }
  return 0;
}
