#include "runner/yaml_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace runner {

namespace {

constexpr size_t kMaxNesting = 64;

// Checks on the raw text that keep the messages users had before libyaml read the files: an
// unclosed quote or bracket where it opens, a tab in the indentation, nesting too deep.

struct TextProblem {
  size_t offset;
  std::string message;
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// A light YAML tokenizer that tracks only what nests: block indentation, `- ` entries, flow
// brackets, quotes (whose content is skipped), block scalars (skipped) and comments.
class StructureCheck {
 public:
  explicit StructureCheck(std::string_view source) : source_(source) {}

  std::optional<TextProblem> Run() {
    size_t line_begin = 0;
    while (line_begin < source_.size()) {
      size_t line_end = source_.find('\n', line_begin);
      if (line_end == std::string_view::npos) line_end = source_.size();
      std::string_view line = source_.substr(line_begin, line_end - line_begin);
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (auto problem = ScanLine(line, line_begin)) return problem;
      line_begin = line_end + 1;
    }
    if (quote_ != 0) {
      return TextProblem{quote_offset_,
                         fmt::format("unclosed quote: this string has no closing {}", quote_)};
    }
    if (!flow_.empty()) {
      char open = source_[flow_.back()];
      return TextProblem{flow_.back(), fmt::format("unclosed '{}': no matching '{}'", open,
                                                   open == '[' ? ']' : '}')};
    }
    return std::nullopt;
  }

 private:
  std::optional<TextProblem> TooDeep(size_t offset) const {
    if (indents_.size() + flow_.size() + inline_depth_ <= kMaxNesting) return std::nullopt;
    return TextProblem{
        offset, fmt::format("nesting deeper than {} levels of lists and mappings", kMaxNesting)};
  }

  std::optional<TextProblem> ScanLine(std::string_view line, size_t line_begin) {
    size_t content = line.find_first_not_of(" \t");
    bool blank = content == std::string_view::npos || line[content] == '#';
    if (block_scalar_parent_) {
      size_t indent = line.find_first_not_of(' ');
      if (content == std::string_view::npos || indent > *block_scalar_parent_) {
        return std::nullopt;
      }
      block_scalar_parent_.reset();
    }
    size_t i = 0;
    if (quote_ == 0 && flow_.empty()) {
      if (blank) return std::nullopt;
      size_t tab = line.substr(0, content).find('\t');
      if (tab != std::string_view::npos) {
        return TextProblem{line_begin + tab,
                           "tab used for indentation: YAML indents with spaces only"};
      }
      i = content;
      if (content == 0 && line.starts_with("---") && (line.size() == 3 || IsBlank(line[3]))) {
        indents_.clear();  // a new document, whose root may follow on this line
        i = std::min(line.find_first_not_of(" \t", 3), line.size());
      } else {
        while (!indents_.empty() && indents_.back() >= content) indents_.pop_back();
        indents_.push_back(content);
      }
      inline_depth_ = 0;
      // `- - x` opens one node per entry indicator on the same line.
      if (auto problem = TooDeep(line_begin + i)) return problem;
      while (i < line.size() && line[i] == '-' && (i + 1 == line.size() || IsBlank(line[i + 1]))) {
        size_t dash = i;
        i = line.find_first_not_of(" \t", i + 1);
        if (i == std::string_view::npos) i = line.size();
        indents_.push_back(i);
        if (auto problem = TooDeep(line_begin + dash)) return problem;
      }
      at_node_start_ = true;
      line_indent_ = content;
    }
    for (; i < line.size(); ++i) {
      char c = line[i];
      if (quote_ == '"') {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          quote_ = 0;
        }
        continue;
      }
      if (quote_ == '\'') {
        if (c == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
          ++i;
        } else if (c == '\'') {
          quote_ = 0;
        }
        continue;
      }
      if (IsBlank(c)) continue;
      if (c == '#' && (i == 0 || IsBlank(line[i - 1]))) break;
      bool in_flow = !flow_.empty();
      // Inside a flow collection a bracket always opens one (a plain scalar ends there); in block
      // context only where a node starts (`run: [ -f x ]` is a string).
      if ((c == '[' || c == '{') && (in_flow || at_node_start_)) {
        flow_.push_back(line_begin + i);
        if (auto problem = TooDeep(line_begin + i)) return problem;
        at_node_start_ = true;
        continue;
      }
      if (in_flow && (c == ']' || c == '}')) {
        flow_.pop_back();
        at_node_start_ = false;
        after_flow_ = flow_.empty();
        continue;
      }
      // YAML allows no `,` outside brackets where a node starts, nor after a top-level flow
      // collection.
      if (!in_flow && c == ',' && (at_node_start_ || after_flow_)) {
        return TextProblem{line_begin + i,
                           "unexpected ',' outside brackets: quote a value that starts with ','"};
      }
      after_flow_ = false;
      if (in_flow && c == ',') {
        at_node_start_ = true;
        continue;
      }
      bool indicator = i + 1 == line.size() || IsBlank(line[i + 1]);
      if (c == ':' && (indicator || (in_flow && std::string_view(",[]{}").contains(line[i + 1])))) {
        at_node_start_ = true;
        // In block context each `:`, `?` or `- ` on a line opens a node inside the last.
        if (!in_flow) ++inline_depth_;
        if (auto problem = TooDeep(line_begin + i)) return problem;
        continue;
      }
      if (!at_node_start_) continue;
      if (c == '"' || c == '\'') {
        quote_ = c;
        quote_offset_ = line_begin + i;
        at_node_start_ = false;
      } else if (!in_flow && (c == '|' || c == '>')) {
        block_scalar_parent_ = line_indent_;
        return std::nullopt;
      } else if (c == '&' || c == '!') {
        // An anchor or a tag: the node itself follows.
        while (i + 1 < line.size() && !IsBlank(line[i + 1])) ++i;
      } else if ((c == '-' || c == '?') && indicator) {
        if (!in_flow) ++inline_depth_;
        if (auto problem = TooDeep(line_begin + i)) return problem;
      } else {
        at_node_start_ = false;
      }
    }
    return std::nullopt;
  }

  std::string_view source_;
  std::vector<size_t> indents_;  // columns of the enclosing block nodes
  std::vector<size_t> flow_;     // offsets of the open `[` and `{`
  char quote_ = 0;
  size_t quote_offset_ = 0;
  bool at_node_start_ = true;
  bool after_flow_ = false;  // the last token closed a top-level flow collection
  size_t inline_depth_ = 0;  // nodes opened by indicators after the indentation of this line
  size_t line_indent_ = 0;
  std::optional<size_t> block_scalar_parent_;  // indentation of the line that opened a `|`/`>`
};

}  // namespace

std::optional<YamlError> CheckYamlText(std::string_view source, std::string_view what) {
  if (std::optional<YamlError> problem = CheckYamlEncoding(source, what)) return problem;
  std::optional<TextProblem> problem = StructureCheck(source).Run();
  if (!problem) return std::nullopt;
  return YamlError{LocationAt(source, problem->offset), problem->message};
}

std::expected<std::vector<YamlNode>, YamlError> LoadYaml(std::string_view source,
                                                         std::string_view what) {
  if (std::optional<YamlError> problem = CheckYamlText(source, what)) {
    return std::unexpected(*problem);
  }
  return ParseYamlDocuments(source, what);
}

}  // namespace runner
