#include "runner/diagnostics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace runner {

namespace {

std::string_view SeverityName(Diagnostic::Severity severity) {
  return severity == Diagnostic::Severity::kError ? "error" : "warning";
}

// Offsets of the start of every line of `source`.
std::vector<size_t> LineStarts(std::string_view source) {
  std::vector<size_t> starts = {0};
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\n') starts.push_back(i + 1);
  }
  return starts;
}

// Line `line` (1-based) of `source` without its line break, or nullopt past the end.
std::optional<std::string_view> SourceLine(std::string_view source,
                                           const std::vector<size_t>& starts, int line) {
  if (line < 1 || static_cast<size_t>(line) > starts.size()) return std::nullopt;
  size_t begin = starts[line - 1];
  if (begin >= source.size()) return std::nullopt;
  size_t end = source.find('\n', begin);
  std::string_view text = source.substr(begin, end == std::string_view::npos ? end : end - begin);
  if (text.ends_with('\r')) text.remove_suffix(1);
  return text;
}

// Columns count bytes (as runner/yaml.h reports them), so the caret skips UTF-8 continuation bytes
// to stay under the character, and copies tabs so that it lines up however tabs are shown.
std::string CaretLine(std::string_view line, int column) {
  std::string caret;
  for (size_t i = 0; i + 1 < static_cast<size_t>(column) && i < line.size(); ++i) {
    unsigned char c = line[i];
    if (c == '\t') {
      caret += '\t';
    } else if ((c & 0xC0) != 0x80) {
      caret += ' ';
    }
  }
  caret += '^';
  return caret;
}

// A long line (a generated one-line file) is cut to a window around the column, at UTF-8
// character boundaries, so that each diagnostic quotes a bounded text. Returns the text to
// quote and the column in it.
std::pair<std::string, int> QuoteWindow(std::string_view line, int column) {
  if (line.size() <= Diagnostics::kQuoteWidth) return {std::string(line), column};
  auto boundary = [&](size_t at) {
    while (at < line.size() && (static_cast<unsigned char>(line[at]) & 0xC0) == 0x80) ++at;
    return std::min(at, line.size());
  };
  size_t at = column > 0 ? static_cast<size_t>(column - 1) : 0;
  size_t begin =
      boundary(at > Diagnostics::kQuoteWidth / 2 ? at - Diagnostics::kQuoteWidth / 2 : 0);
  size_t end = boundary(begin + Diagnostics::kQuoteWidth);
  std::string quoted = begin > 0 ? "..." : "";
  int shift = static_cast<int>(begin) - static_cast<int>(quoted.size());
  quoted += line.substr(begin, end - begin);
  if (end < line.size()) quoted += "...";
  return {quoted, column > 0 ? column - shift : column};
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Optimal string alignment distance: Levenshtein plus transposition of adjacent characters,
// the commonest typo ("nedes").
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

Diagnostics::Diagnostics(std::string file, std::string source)
    : file_(std::move(file)), source_(std::move(source)) {}

void Diagnostics::Error(SourceLocation where, std::string message) {
  diagnostics_.push_back({Diagnostic::Severity::kError, where, std::move(message)});
  ++errors_;
}

void Diagnostics::Warning(SourceLocation where, std::string message) {
  diagnostics_.push_back({Diagnostic::Severity::kWarning, where, std::move(message)});
}

std::string Diagnostics::Format() const {
  std::vector<const Diagnostic*> sorted;
  for (const Diagnostic& d : diagnostics_) sorted.push_back(&d);
  std::ranges::stable_sort(sorted, [](const Diagnostic* a, const Diagnostic* b) {
    return std::pair(a->where.line, a->where.column) < std::pair(b->where.line, b->where.column);
  });

  const std::vector<size_t> starts = LineStarts(source_);
  std::string out;
  size_t hidden = sorted.size() > kMaxShown ? sorted.size() - kMaxShown : 0;
  sorted.resize(sorted.size() - hidden);
  for (const Diagnostic* d : sorted) {
    const SourceLocation& where = d->where;
    std::string_view severity = SeverityName(d->severity);
    if (where.line <= 0) {
      out += fmt::format("{}: {}: {}\n", file_, severity, d->message);
      continue;
    }
    if (where.column <= 0) {
      out += fmt::format("{}:{}: {}: {}\n", file_, where.line, severity, d->message);
    } else {
      out +=
          fmt::format("{}:{}:{}: {}: {}\n", file_, where.line, where.column, severity, d->message);
    }
    std::optional<std::string_view> line = SourceLine(source_, starts, where.line);
    if (!line) continue;
    auto [quoted, column] = QuoteWindow(*line, where.column);
    out += fmt::format("{}\n", quoted);
    if (where.column > 0) out += CaretLine(quoted, column) + "\n";
  }
  if (hidden > 0) out += fmt::format("{}: and {} more errors and warnings\n", file_, hidden);
  return out;
}

std::string SuggestClosest(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.size() > kMaxSuggestLength) return "";
  size_t limit = std::max<size_t>(1, word.size() / 3);
  const std::string* best = nullptr;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    // The distance is at least the difference in length: skip the quadratic work.
    size_t length_gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                       : candidate.size() - word.size();
    if (length_gap > limit || candidate.size() > kMaxSuggestLength) continue;
    size_t distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best = &candidate;
      best_distance = distance;
    }
  }
  return best ? *best : std::string();
}

std::string DidYouMeanHint(std::string_view word, const std::vector<std::string>& candidates,
                           std::string_view prefix) {
  std::string best = SuggestClosest(word, candidates);
  if (best.empty()) return "";
  return fmt::format(" (did you mean '{}{}'?)", prefix, best);
}

}  // namespace runner
