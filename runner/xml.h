// XML read and written with libxml2 (never by hand): a parsed document whose elements are found
// by local name (namespaces ignored), and a writer for documents such as junit.xml and S3's
// CompleteMultipartUpload.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/result.h"

struct _xmlDoc;
struct _xmlNode;
struct _xmlTextWriter;
struct _xmlBuffer;

namespace runner::xml {

// The largest document Parse accepts: AWS answers are far smaller.
inline constexpr std::size_t kMaxDocumentSize = 64 * 1024 * 1024;

// An element of a Document, or none (a failed lookup): every accessor of an empty Element
// returns an empty result. Valid while its Document lives. Names are local names: `Code` matches
// `<Code>` and `<aws:Code>`.
class Element {
 public:
  Element() = default;

  explicit operator bool() const { return node_ != nullptr; }
  std::string_view Name() const;
  // The text of the element and everything below it, entities decoded.
  std::string Text() const;
  // The first child element named `name`.
  Element Child(std::string_view name) const;
  // The text of Child(name); empty when there is none.
  std::string ChildText(std::string_view name) const;
  // Every child element named `name` in document order (every child element when `name` is
  // empty), e.g. Child("Changes").Children("member").
  std::vector<Element> Children(std::string_view name = {}) const;
  // The first element named `name` at or below this one, in document order.
  Element Find(std::string_view name) const;
  // Every element named `name` at or below this one, in document order.
  std::vector<Element> FindAll(std::string_view name) const;

 private:
  friend class Document;
  explicit Element(const _xmlNode* node) : node_(node) {}
  const _xmlNode* node_ = nullptr;
};

// A parsed document. Parsing never touches the network, never expands entities and refuses a
// document type declaration (so neither external entities nor entity expansion bombs get in).
class Document {
 public:
  // Fails, naming the line and libxml2's reason, on a document that is not well-formed, holds
  // a DOCTYPE or is larger than `max_size`. Whitespace before the document is skipped.
  static Result<Document> Parse(std::string_view text, std::size_t max_size = kMaxDocumentSize);

  Element Root() const;

 private:
  struct Free {
    void operator()(_xmlDoc* doc) const;
  };
  explicit Document(_xmlDoc* doc) : doc_(doc) {}
  std::unique_ptr<_xmlDoc, Free> doc_;
};

// `text` with every byte sequence XML 1.0 cannot hold replaced by U+FFFD: invalid or overlong
// UTF-8, surrogates, U+FFFE, U+FFFF and control characters other than tab, newline and
// carriage return. Any bytes a step printed become well-formed text.
std::string ValidXmlText(std::string_view text);

// Writes one document into memory. Names must be valid XML names (the caller's constants);
// attribute values and text may be any bytes: they pass through ValidXmlText and are escaped
// by libxml2. Not thread-safe.
class Writer {
 public:
  struct Options {
    bool declaration = false;  // `<?xml version="1.0" encoding="UTF-8"?>` first
    bool indent = false;       // two spaces per level, a line per element
  };
  Writer() : Writer(Options{}) {}
  explicit Writer(Options options);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& Start(std::string_view name);
  Writer& Attribute(std::string_view name, std::string_view value);
  Writer& Text(std::string_view text);
  Writer& End();
  // Start(name), Text(text), End().
  Writer& Element(std::string_view name, std::string_view text);
  // Closes every open element and returns the document; the writer is then spent.
  Result<std::string> Finish();

 private:
  _xmlBuffer* buffer_ = nullptr;
  _xmlTextWriter* writer_ = nullptr;
  bool failed_ = false;
};

}  // namespace runner::xml
