// The libxml2 wrapper: lookups by local name, every match of a list, the parser's refusals,
// and a writer whose output any bytes cannot break.
#include "runner/xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runner::xml {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(XmlTest, ElementTextDecodesEntities) {
  auto document = Document::Parse("<a><Code>x&amp;y&lt;&gt;&quot;&apos;&#65;&#xE9;</Code></a>");
  ASSERT_TRUE(document.has_value()) << document.error();
  EXPECT_EQ(document->Root().Find("Code").Text(), "x&y<>\"'A\xC3\xA9");
  auto empty = Document::Parse("<a></a>");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->Root().Find("Code").Text(), "");
}

TEST(XmlTest, EveryMemberOfAListIsRead) {
  auto document = Document::Parse(
      "<DescribeChangeSetResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
      "<DescribeChangeSetResult><Changes>"
      "<member><ResourceChange><LogicalResourceId>Asg</LogicalResourceId></ResourceChange></member>"
      "<member><ResourceChange><LogicalResourceId>Lc</LogicalResourceId></ResourceChange></member>"
      "<member><ResourceChange><LogicalResourceId>Sg</LogicalResourceId></ResourceChange></member>"
      "</Changes><Status>CREATE_COMPLETE</Status></DescribeChangeSetResult>"
      "</DescribeChangeSetResponse>");
  ASSERT_TRUE(document.has_value()) << document.error();
  Element result = document->Root().Child("DescribeChangeSetResult");
  ASSERT_TRUE(result);
  EXPECT_EQ(result.ChildText("Status"), "CREATE_COMPLETE");
  std::vector<std::string> ids;
  for (const Element& member : result.Child("Changes").Children("member")) {
    ids.push_back(member.Child("ResourceChange").ChildText("LogicalResourceId"));
  }
  EXPECT_THAT(ids, ElementsAre("Asg", "Lc", "Sg"));
  EXPECT_EQ(document->Root().FindAll("LogicalResourceId").size(), 3u);
}

TEST(XmlTest, NamespacePrefixesAreIgnored) {
  auto document = Document::Parse("<s:Envelope xmlns:s=\"urn:x\"><s:Body>b</s:Body></s:Envelope>");
  ASSERT_TRUE(document.has_value()) << document.error();
  EXPECT_EQ(document->Root().Name(), "Envelope");
  EXPECT_EQ(document->Root().ChildText("Body"), "b");
  EXPECT_FALSE(document->Root().Child("Missing"));
  EXPECT_TRUE(document->Root().Child("Missing").Children().empty());
}

TEST(XmlTest, WhitespaceBeforeTheDeclarationIsSkipped) {
  // S3 sends spaces while a CompleteMultipartUpload is in progress.
  auto document = Document::Parse("  \n <?xml version=\"1.0\"?><R><ETag>e</ETag></R>");
  ASSERT_TRUE(document.has_value()) << document.error();
  EXPECT_EQ(document->Root().ChildText("ETag"), "e");
}

TEST(XmlTest, MalformedDocumentsAreErrors) {
  EXPECT_THAT(Document::Parse("<a><b></a>").error(), HasSubstr("not well-formed"));
  EXPECT_THAT(Document::Parse("").error(), HasSubstr("XML"));
  EXPECT_THAT(Document::Parse("<a>1234</a>", 5).error(), HasSubstr("larger"));
}

TEST(XmlTest, EntityDefinitionsAreRefused) {
  // Neither an external entity (a file read) nor an expansion bomb gets through.
  auto external = Document::Parse(
      "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>");
  ASSERT_FALSE(external.has_value());
  EXPECT_THAT(external.error(), HasSubstr("DOCTYPE"));
  auto bomb = Document::Parse(
      "<!DOCTYPE a [<!ENTITY b \"bbbbbbbb\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;\">]><a>&c;</a>");
  EXPECT_FALSE(bomb.has_value());
}

TEST(XmlTest, ValidXmlTextReplacesWhatXmlCannotHold) {
  EXPECT_EQ(ValidXmlText("ok \t\n\r \xC3\xA9"), "ok \t\n\r \xC3\xA9");
  EXPECT_EQ(ValidXmlText("\x1b[0m"), "\xEF\xBF\xBD[0m");
  EXPECT_EQ(ValidXmlText("\xff"), "\xEF\xBF\xBD");
  EXPECT_EQ(ValidXmlText("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(ValidXmlText("\xEF\xBF\xBE"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFE
  EXPECT_EQ(ValidXmlText(std::string_view("a\0b", 3)),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(XmlTest, WriterEscapesAndRoundTripsAnyBytes) {
  std::string nasty = "<&>\"' \x01\xff end";
  Writer writer;
  writer.Start("root").Attribute("note", nasty).Element("child", nasty).End();
  auto text = writer.Finish();
  ASSERT_TRUE(text.has_value()) << text.error();
  EXPECT_THAT(*text, HasSubstr("note=\"&lt;&amp;&gt;&quot;&apos; "));
  auto document = Document::Parse(*text);
  ASSERT_TRUE(document.has_value()) << document.error() << "\n" << *text;
  EXPECT_EQ(document->Root().ChildText("child"), ValidXmlText(nasty));
}

TEST(XmlTest, WriterWithoutOptionsWritesNoDeclarationAndNoNewline) {
  Writer writer;
  writer.Start("a").Attribute("xmlns", "urn:x").Element("b", "1");
  EXPECT_EQ(writer.Finish().value(), "<a xmlns=\"urn:x\"><b>1</b></a>");
}

TEST(XmlTest, WriterDeclarationAndIndent) {
  Writer writer({.declaration = true, .indent = true});
  writer.Start("a").Start("b").End().End();
  std::string text = writer.Finish().value();
  EXPECT_THAT(text, ::testing::StartsWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>\n"));
  EXPECT_THAT(text, HasSubstr("  <b/>\n</a>\n"));
}

}  // namespace
}  // namespace runner::xml
