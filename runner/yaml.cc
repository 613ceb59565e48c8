#include "runner/yaml.h"

#include <fmt/format.h>
#include <yaml.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

namespace runner {

namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

size_t Utf8Length(char lead) {
  auto c = static_cast<unsigned char>(lead);
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

// libyaml's marks count characters; locations count bytes (SourceLocation). Marks arrive in
// nearly increasing order, so a cursor that only restarts when one goes back keeps the
// conversion linear.
class Locator {
 public:
  explicit Locator(std::string_view source)
      : source_(source), base_(source.starts_with(kByteOrderMark) ? kByteOrderMark.size() : 0) {
    Reset();
  }

  // The byte offset and location of the character `index`.
  std::pair<size_t, SourceLocation> At(size_t index) {
    if (index < chars_) Reset();
    while (chars_ < index && byte_ < source_.size()) {
      size_t length = std::min(Utf8Length(source_[byte_]), source_.size() - byte_);
      if (source_[byte_] == '\n') {
        ++where_.line;
        where_.column = 1;
      } else {
        where_.column += static_cast<int>(length);
      }
      byte_ += length;
      ++chars_;
    }
    return {byte_, where_};
  }

 private:
  void Reset() {
    chars_ = 0;
    byte_ = base_;
    where_ = {1, static_cast<int>(base_) + 1};
  }

  std::string_view source_;
  size_t base_;  // libyaml skips a byte order mark without counting it
  size_t chars_ = 0;
  size_t byte_ = 0;
  SourceLocation where_;
};

// libyaml's messages name its parser state; say what the user got wrong. `at` is the character
// at the problem.
std::string DescribeProblem(std::string_view problem, std::string_view context, char at) {
  bool block = context.empty() || context.find("block") != std::string_view::npos;
  if (problem == "mapping values are not allowed in this context") {
    return "unexpected ':': check the indentation, or quote a value that contains ': '";
  }
  if (block && (at == ']' || at == '}')) return "closing bracket without an opening one";
  if (block && at == ',')
    return "unexpected ',' outside brackets: quote a value that starts with ','";
  if (problem == "did not find expected key" || problem == "did not find expected '-' indicator") {
    return "bad indentation: this line does not line up with the lines above it";
  }
  if (problem == "did not find expected <document start>") {
    return "unexpected text after the end of the document: check the indentation, or quote the "
           "value";
  }
  if (context.empty()) return std::string(problem);
  return fmt::format("{} ({})", problem, context);
}

struct ParserDeleter {
  void operator()(yaml_parser_t* parser) const {
    yaml_parser_delete(parser);
    delete parser;
  }
};

struct EventDeleter {
  void operator()(yaml_event_t* event) const { yaml_event_delete(event); }
};

std::string Text(const yaml_char_t* text) {
  return text ? std::string(reinterpret_cast<const char*>(text)) : std::string();
}

class TreeBuilder {
 public:
  TreeBuilder(std::string_view source, std::string_view what, const YamlLimits& limits)
      : source_(source), what_(what), limits_(limits), locator_(source) {}

  std::expected<std::vector<YamlNode>, YamlError> Run() {
    std::unique_ptr<yaml_parser_t, ParserDeleter> parser(new yaml_parser_t);
    if (!yaml_parser_initialize(parser.get())) {
      return std::unexpected(YamlError{{}, fmt::format("cannot read {}: out of memory", what_)});
    }
    yaml_parser_set_input_string(
        parser.get(), reinterpret_cast<const unsigned char*>(source_.data()), source_.size());
    for (;;) {
      yaml_event_t event;
      if (!yaml_parser_parse(parser.get(), &event)) return std::unexpected(ParserError(*parser));
      std::unique_ptr<yaml_event_t, EventDeleter> owned(&event);
      if (event.type == YAML_STREAM_END_EVENT) break;
      if (std::optional<YamlError> error = Handle(event)) return std::unexpected(*error);
    }
    return std::move(documents_);
  }

 private:
  struct Open {
    YamlNode node;
    std::string anchor;
    size_t size = 1;              // nodes in it, itself included
    std::optional<YamlNode> key;  // kMap: a key waiting for its value
  };

  YamlError ParserError(const yaml_parser_t& parser) {
    if (parser.error == YAML_MEMORY_ERROR) {
      return {{}, fmt::format("cannot read {}: out of memory", what_)};
    }
    std::string_view problem = parser.problem ? parser.problem : "syntax error";
    std::string_view context = parser.context ? parser.context : "";
    if (problem == "found unexpected end of stream" &&
        context == "while scanning a quoted scalar") {
      auto [offset, where] = locator_.At(parser.context_mark.index);
      return {where, fmt::format("unclosed quote: this string has no closing {}",
                                 offset < source_.size() ? source_[offset] : '"')};
    }
    auto [offset, where] = locator_.At(parser.problem_mark.index);
    char at = offset < source_.size() ? source_[offset] : '\0';
    return {where, "invalid YAML: " + DescribeProblem(problem, context, at)};
  }

  // A node that starts at `mark`, with the tag `tag`.
  YamlNode Start(YamlNode::Type type, const yaml_mark_t& mark, const yaml_char_t* tag) {
    YamlNode node;
    node.type = type;
    std::tie(node.offset, node.where) = locator_.At(mark.index);
    node.tag = Text(tag);
    return node;
  }

  std::optional<YamlError> Count(size_t nodes, SourceLocation where) {
    nodes_ += nodes;
    if (nodes_ <= limits_.max_nodes) return std::nullopt;
    return YamlError{where, fmt::format("more than {} values in {}: an alias repeats every value "
                                        "of its anchor; write the values out instead",
                                        limits_.max_nodes, what_)};
  }

  void Add(YamlNode node, size_t size, const std::string& anchor) {
    if (!anchor.empty()) anchors_.insert_or_assign(anchor, std::pair(node, size));
    if (open_.empty()) {
      documents_.push_back(std::move(node));
      return;
    }
    Open& parent = open_.back();
    parent.size += size;
    if (parent.node.IsList()) {
      parent.node.items.push_back(std::move(node));
    } else if (!parent.key) {
      parent.key = std::move(node);
    } else {
      parent.node.fields.emplace_back(std::move(*parent.key), std::move(node));
      parent.key.reset();
    }
  }

  std::optional<YamlError> Handle(const yaml_event_t& event) {
    switch (event.type) {
      case YAML_DOCUMENT_START_EVENT:
        anchors_.clear();  // anchors name nodes of their own document only
        return std::nullopt;
      case YAML_SCALAR_EVENT: {
        const auto& scalar = event.data.scalar;
        YamlNode node = Start(YamlNode::Type::kScalar, event.start_mark, scalar.tag);
        node.value.assign(reinterpret_cast<const char*>(scalar.value), scalar.length);
        node.plain = scalar.style == YAML_PLAIN_SCALAR_STYLE;
        node.empty = node.plain && scalar.length == 0 && node.tag.empty() &&
                     event.start_mark.index == event.end_mark.index;
        if (node.value.find('\0') != std::string::npos) {
          return YamlError{node.where,
                           fmt::format("NUL character in a value (an escape such as \"\\0\"): {} "
                                       "must not hold NUL",
                                       what_)};
        }
        if (auto error = Count(1, node.where)) return error;
        Add(std::move(node), 1, Text(scalar.anchor));
        return std::nullopt;
      }
      case YAML_ALIAS_EVENT: {
        auto [offset, where] = locator_.At(event.start_mark.index);
        std::string name = Text(event.data.alias.anchor);
        auto anchor = anchors_.find(name);
        if (anchor == anchors_.end()) {
          return YamlError{
              where, fmt::format("unknown alias '*{}': no anchor '&{}' before it", name, name)};
        }
        auto& [anchored, size] = anchor->second;
        if (auto error = Count(size, where)) return error;
        YamlNode node = anchored;
        node.anchor_where = node.where;
        node.where = where;
        node.offset = offset;
        Add(std::move(node), size, "");
        return std::nullopt;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        bool list = event.type == YAML_SEQUENCE_START_EVENT;
        YamlNode node = Start(list ? YamlNode::Type::kList : YamlNode::Type::kMap, event.start_mark,
                              list ? event.data.sequence_start.tag : event.data.mapping_start.tag);
        if (open_.size() >= limits_.max_depth) {
          return YamlError{node.where, fmt::format("nesting deeper than {} levels of lists and "
                                                   "mappings",
                                                   limits_.max_depth)};
        }
        if (auto error = Count(1, node.where)) return error;
        open_.push_back(
            {std::move(node),
             Text(list ? event.data.sequence_start.anchor : event.data.mapping_start.anchor), 1,
             std::nullopt});
        return std::nullopt;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        Open done = std::move(open_.back());
        open_.pop_back();
        Add(std::move(done.node), done.size, done.anchor);
        return std::nullopt;
      }
      default:
        return std::nullopt;
    }
  }

  std::string_view source_;
  std::string_view what_;
  const YamlLimits& limits_;
  Locator locator_;
  std::vector<Open> open_;
  std::map<std::string, std::pair<YamlNode, size_t>, std::less<>> anchors_;
  std::vector<YamlNode> documents_;
  size_t nodes_ = 0;
};

}  // namespace

bool YamlNode::IsNull() const {
  return type == Type::kScalar && plain && tag.empty() &&
         (value.empty() || value == "~" || value == "null" || value == "Null" || value == "NULL");
}

const YamlNode* YamlNode::Find(std::string_view key) const {
  for (const auto& [name, field] : fields) {
    if (name.IsScalar() && name.value == key) return &field;
  }
  return nullptr;
}

SourceLocation LocationAt(std::string_view source, size_t offset, size_t from_offset,
                          SourceLocation from) {
  offset = std::min(offset, source.size());
  SourceLocation where = from;
  for (size_t i = from_offset; i < offset; ++i) {
    if (source[i] == '\n') {
      ++where.line;
      where.column = 1;
    } else {
      ++where.column;
    }
  }
  return where;
}

std::optional<YamlError> CheckYamlEncoding(std::string_view source, std::string_view what) {
  for (size_t i = 0; i < source.size();) {
    auto c = static_cast<unsigned char>(source[i]);
    if (c == 0) {
      return YamlError{LocationAt(source, i),
                       fmt::format("NUL byte in the file: {} must be UTF-8 text", what)};
    }
    size_t length = c < 0x80                   ? 1
                    : (c >= 0xC2 && c <= 0xDF) ? 2
                    : (c & 0xF0) == 0xE0       ? 3
                    : (c >= 0xF0 && c <= 0xF4) ? 4
                                               : 0;
    bool valid = length > 0 && i + length <= source.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(source[i + k]) & 0xC0) == 0x80;
    }
    if (!valid) {
      return YamlError{
          LocationAt(source, i),
          fmt::format("invalid UTF-8 (byte 0x{:02x}): {} must be UTF-8 text", c, what)};
    }
    i += length;
  }
  return std::nullopt;
}

std::expected<std::vector<YamlNode>, YamlError> ParseYamlDocuments(std::string_view source,
                                                                   std::string_view what,
                                                                   const YamlLimits& limits) {
  // libyaml reads a NUL as the end of the text and has its own words for bad UTF-8.
  if (std::optional<YamlError> problem = CheckYamlEncoding(source, what)) {
    return std::unexpected(*problem);
  }
  return TreeBuilder(source, what, limits).Run();
}

}  // namespace runner
