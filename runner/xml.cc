#include "runner/xml.h"

#include <fmt/format.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "runner/utf8.h"

namespace runner::xml {

namespace {

const xmlChar* Chars(const std::string& text) {
  return reinterpret_cast<const xmlChar*>(text.c_str());
}

bool Named(const xmlNode* node, std::string_view name) {
  return node->type == XML_ELEMENT_NODE &&
         (name.empty() || std::string_view(reinterpret_cast<const char*>(node->name)) == name);
}

void CollectBelow(const xmlNode* node, std::string_view name, bool first_only,
                  std::vector<const xmlNode*>& out) {
  if (Named(node, name)) {
    out.push_back(node);
    if (first_only) return;
  }
  for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
    if (first_only && !out.empty()) return;
    CollectBelow(child, name, first_only, out);
  }
}

}  // namespace

std::string_view Element::Name() const {
  return node_ == nullptr ? std::string_view() : reinterpret_cast<const char*>(node_->name);
}

std::string Element::Text() const {
  if (node_ == nullptr) return {};
  xmlChar* content = xmlNodeGetContent(node_);
  if (content == nullptr) return {};
  std::string text(reinterpret_cast<const char*>(content));
  xmlFree(content);
  return text;
}

Element Element::Child(std::string_view name) const {
  if (node_ == nullptr) return {};
  for (const xmlNode* child = node_->children; child != nullptr; child = child->next) {
    if (Named(child, name)) return Element(child);
  }
  return {};
}

std::string Element::ChildText(std::string_view name) const { return Child(name).Text(); }

std::vector<Element> Element::Children(std::string_view name) const {
  std::vector<Element> out;
  if (node_ == nullptr) return out;
  for (const xmlNode* child = node_->children; child != nullptr; child = child->next) {
    if (Named(child, name)) out.push_back(Element(child));
  }
  return out;
}

Element Element::Find(std::string_view name) const {
  if (node_ == nullptr) return {};
  std::vector<const xmlNode*> found;
  CollectBelow(node_, name, true, found);
  return found.empty() ? Element() : Element(found.front());
}

std::vector<Element> Element::FindAll(std::string_view name) const {
  std::vector<Element> out;
  if (node_ == nullptr) return out;
  std::vector<const xmlNode*> found;
  CollectBelow(node_, name, false, found);
  for (const xmlNode* node : found) out.push_back(Element(node));
  return out;
}

void Document::Free::operator()(_xmlDoc* doc) const { xmlFreeDoc(doc); }

Result<Document> Document::Parse(std::string_view text, std::size_t max_size) {
  if (text.size() > max_size) {
    return Fail(fmt::format("XML document of {} bytes is larger than the {} accepted", text.size(),
                            max_size));
  }
  // S3 keeps a slow CompleteMultipartUpload alive by sending spaces before the document, where
  // XML allows no declaration: the spaces go.
  size_t start = text.find_first_not_of(" \t\r\n");
  text.remove_prefix(start == std::string_view::npos ? text.size() : start);
  xmlParserCtxtPtr context = xmlNewParserCtxt();
  if (context == nullptr) return Fail("XML: out of memory");
  // No XML_PARSE_NOENT (entities stay unexpanded), NONET (no fetch of anything external), and
  // no messages on stderr: the error is returned instead.
  xmlDocPtr doc = xmlCtxtReadMemory(
      context, text.data(), static_cast<int>(text.size()), nullptr, nullptr,
      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
  std::string error;
  if (doc == nullptr || !context->wellFormed) {
    const xmlError* last = xmlCtxtGetLastError(context);
    std::string reason = last != nullptr && last->message != nullptr ? last->message : "";
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
    error = fmt::format("XML is not well-formed (line {}): {}", last != nullptr ? last->line : 0,
                        reason.empty() ? "unknown error" : reason);
  } else if (doc->intSubset != nullptr) {
    error = "XML holds a DOCTYPE, which is not accepted (no entity definitions)";
  } else if (xmlDocGetRootElement(doc) == nullptr) {
    error = "XML document has no root element";
  }
  xmlFreeParserCtxt(context);
  if (!error.empty()) {
    if (doc != nullptr) xmlFreeDoc(doc);
    return Fail(error);
  }
  return Document(doc);
}

Element Document::Root() const { return Element(xmlDocGetRootElement(doc_.get())); }

std::string ValidXmlText(std::string_view text) {
  // Valid UTF-8 first (one rule, runner/utf8.h), then the characters XML 1.0 still forbids:
  // C0 controls other than tab, LF and CR, and U+FFFE and U+FFFF.
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string valid = MakeValidUtf8(text);
  std::string out;
  out.reserve(valid.size());
  for (size_t i = 0; i < valid.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(valid[i]);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      out += kReplacement;
    } else if (c == 0xEF && valid.compare(i, 2, "\xEF\xBF") == 0 && i + 2 < valid.size() &&
               (valid[i + 2] == '\xBE' || valid[i + 2] == '\xBF')) {
      for (int k = 0; k < 3; ++k) out += kReplacement;  // one for each of its bytes
      i += 2;
    } else {
      out += valid[i];
    }
  }
  return out;
}

Writer::Writer(Options options) {
  buffer_ = xmlBufferCreate();
  writer_ = buffer_ == nullptr ? nullptr : xmlNewTextWriterMemory(buffer_, 0);
  failed_ = writer_ == nullptr;
  if (failed_) return;
  if (options.indent) {
    failed_ |= xmlTextWriterSetIndent(writer_, 1) < 0;
    failed_ |= xmlTextWriterSetIndentString(writer_, BAD_CAST "  ") < 0;
  }
  if (options.declaration)
    failed_ |= xmlTextWriterStartDocument(writer_, "1.0", "UTF-8", nullptr) < 0;
}

Writer::~Writer() {
  if (writer_ != nullptr) xmlFreeTextWriter(writer_);
  if (buffer_ != nullptr) xmlBufferFree(buffer_);
}

Writer& Writer::Start(std::string_view name) {
  if (!failed_) failed_ = xmlTextWriterStartElement(writer_, Chars(std::string(name))) < 0;
  return *this;
}

Writer& Writer::Attribute(std::string_view name, std::string_view value) {
  if (failed_) return *this;
  failed_ = xmlTextWriterStartAttribute(writer_, Chars(std::string(name))) < 0;
  // libxml2 leaves apostrophes as they are; junit.xml has always had them as &apos;, which
  // keeps a value intact for tools that re-quote attributes with single quotes.
  std::string text = ValidXmlText(value);
  size_t start = 0;
  while (!failed_ && start <= text.size()) {
    size_t quote = text.find('\'', start);
    std::string piece = text.substr(start, quote == std::string::npos ? quote : quote - start);
    if (!piece.empty()) failed_ = xmlTextWriterWriteString(writer_, Chars(piece)) < 0;
    if (quote == std::string::npos) break;
    if (!failed_) failed_ = xmlTextWriterWriteRaw(writer_, BAD_CAST "&apos;") < 0;
    start = quote + 1;
  }
  if (!failed_) failed_ = xmlTextWriterEndAttribute(writer_) < 0;
  return *this;
}

Writer& Writer::Text(std::string_view text) {
  if (!failed_) failed_ = xmlTextWriterWriteString(writer_, Chars(ValidXmlText(text))) < 0;
  return *this;
}

Writer& Writer::End() {
  if (!failed_) failed_ = xmlTextWriterEndElement(writer_) < 0;
  return *this;
}

Writer& Writer::Element(std::string_view name, std::string_view text) {
  return Start(name).Text(text).End();
}

Result<std::string> Writer::Finish() {
  // Element by element rather than xmlTextWriterEndDocument, which would add a newline a
  // request body must not have.
  while (!failed_) {
    int ended = xmlTextWriterEndElement(writer_);
    if (ended < 0) break;
  }
  if (!failed_) failed_ = xmlTextWriterFlush(writer_) < 0;
  if (failed_) return Fail("XML: libxml2 could not write the document (out of memory?)");
  std::string out(reinterpret_cast<const char*>(xmlBufferContent(buffer_)),
                  static_cast<size_t>(xmlBufferLength(buffer_)));
  failed_ = true;
  return out;
}

}  // namespace runner::xml
