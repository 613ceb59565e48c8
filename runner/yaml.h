// YAML documents read with libyaml's event parser into a small tree that keeps every location.
// libyaml (the parser under PyYAML, fuzzed upstream) has no recursion and no known input that
// loops; the tree adds what it lacks: a nesting limit, a budget of nodes that stops an alias
// bomb, and NUL-free values. Reading is linear in the size of the text, whatever the text.
#pragma once

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/diagnostics.h"

namespace runner {

struct YamlError {
  SourceLocation where;
  std::string message;
};

struct YamlNode {
  enum class Type { kScalar, kList, kMap };
  Type type = Type::kScalar;
  // Of the node's first character (its tag or anchor, if any); for a node reached through an
  // alias, of the alias: an error about it points where it is used.
  SourceLocation where;
  size_t offset = 0;  // byte offset of `where` in the text
  // The tag as written, resolved by libyaml: "!Ref", "tag:yaml.org,2002:str"; empty when none.
  std::string tag;
  std::string value;                                  // kScalar
  bool plain = false;                                 // kScalar: neither quoted nor a block scalar
  bool empty = false;                                 // kScalar: nothing was written (`key:`)
  std::vector<YamlNode> items;                        // kList
  std::vector<std::pair<YamlNode, YamlNode>> fields;  // kMap: key and value, in file order
  // Set on a node reached through an alias: where the anchored node is written.
  std::optional<SourceLocation> anchor_where;

  // A plain untagged scalar that YAML reads as null: nothing, `~`, `null`, `Null`, `NULL`.
  bool IsNull() const;
  // A scalar that is not null.
  bool IsScalar() const { return type == Type::kScalar && !IsNull(); }
  bool IsList() const { return type == Type::kList; }
  bool IsMap() const { return type == Type::kMap; }
  // The value of the first field whose key is the scalar `key`, or nullptr.
  const YamlNode* Find(std::string_view key) const;
};

struct YamlLimits {
  size_t max_depth = 64;  // nested lists and mappings
  // Nodes in all documents, counting every node an alias repeats.
  size_t max_nodes = size_t{1} << 20;
};

// Every document of `source`, in order (an empty text has none). Fails on the first problem:
// a syntax error (said in terms of what the user got wrong), nesting deeper than the limit,
// more nodes than the budget, an alias of an unknown anchor, a NUL character in a value, and
// first of all CheckYamlEncoding's problems. `what` names the file in messages ("a pipeline
// file", "appspec.yml").
std::expected<std::vector<YamlNode>, YamlError> ParseYamlDocuments(std::string_view source,
                                                                   std::string_view what,
                                                                   const YamlLimits& limits = {});

// A NUL byte or invalid UTF-8 in the text, if any (libyaml reads a NUL as the end of the text).
std::optional<YamlError> CheckYamlEncoding(std::string_view source, std::string_view what);

// The location of byte `offset`, counting from `from` (a known location at `from_offset`
// before it), so that many lookups in a large file stay linear.
SourceLocation LocationAt(std::string_view source, size_t offset, size_t from_offset = 0,
                          SourceLocation from = {1, 1});

}  // namespace runner
