#include "runner/expression.h"

#include <fmt/format.h>

#include <cctype>

namespace runner {

namespace {

constexpr std::string_view kOpen = "${{";
constexpr std::string_view kClose = "}}";

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// Dot-separated identifiers, each [A-Za-z_][A-Za-z0-9_-]*.
bool IsDottedName(std::string_view name) {
  bool at_start = true;
  for (char c : name) {
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
    } else if (at_start ? IsNameStart(c) : IsNameChar(c)) {
      at_start = false;
    } else {
      return false;
    }
  }
  return !at_start;
}

std::string_view Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

}  // namespace

std::expected<std::vector<TemplatePart>, TemplateError> ParseTemplate(std::string_view text) {
  std::vector<TemplatePart> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) {
      parts.push_back({false, std::string(text.substr(pos)), pos});
      break;
    }
    if (open > pos) parts.push_back({false, std::string(text.substr(pos, open - pos)), pos});
    size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string_view::npos) {
      return std::unexpected(TemplateError{"unclosed '${{': add '}}' after the name", open});
    }
    std::string_view name = Trim(text.substr(open + kOpen.size(), close - open - kOpen.size()));
    if (name.empty()) {
      return std::unexpected(
          TemplateError{"empty expression '${{ }}': write a name such as ${{ build.id }}", open});
    }
    if (!IsDottedName(name)) {
      return std::unexpected(TemplateError{
          fmt::format("invalid expression '{}': an expression is one dotted name such as "
                      "build.branch or vars.store",
                      name),
          open});
    }
    parts.push_back({true, std::string(name), open});
    pos = close + kClose.size();
  }
  return parts;
}

bool HasExpression(std::string_view text) { return text.find(kOpen) != std::string_view::npos; }

const std::vector<std::string>& BuildFieldNames() {
  static const std::vector<std::string> kNames = {"project",      "branch",  "commit",
                                                  "short_commit", "number",  "id",
                                                  "event",        "trigger", "workspace"};
  return kNames;
}

Result<std::string> ExpandTemplate(std::string_view text, const NameLookup& lookup) {
  auto parts = ParseTemplate(text);
  if (!parts) return Fail(parts.error().message);
  std::string out;
  for (const TemplatePart& part : *parts) {
    if (!part.is_expression) {
      out += part.text;
      continue;
    }
    std::optional<std::string> value = lookup(part.text);
    if (!value)
      return Fail(fmt::format("unknown name '{}' in '${{{{ {} }}}}'", part.text, part.text));
    out += *value;
  }
  return out;
}

}  // namespace runner
