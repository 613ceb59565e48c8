// Errors and warnings about a file, reported as `FILE:LINE:COL: error: MESSAGE`, then the
// source line and a caret under the column (the form compilers and ninja use).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

// 1-based line and column; 0 means unknown (the message is then reported as `FILE: error:`).
struct SourceLocation {
  int line = 0;
  int column = 0;
};

struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  SourceLocation where;
  std::string message;
};

// Collects every problem found in one pass over a file.
class Diagnostics {
 public:
  // `file` is the name shown to the user, `source` the file's text (for the quoted line).
  Diagnostics(std::string file, std::string source);

  void Error(SourceLocation where, std::string message);
  void Warning(SourceLocation where, std::string message);

  // Diagnostics that Format shows; the count of the others follows them.
  static constexpr size_t kMaxShown = 100;
  // A line longer than this is quoted as a window around the column.
  static constexpr size_t kQuoteWidth = 160;

  bool HasErrors() const { return errors_ > 0; }
  size_t ErrorCount() const { return errors_; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  const std::string& file() const { return file_; }

  // Every diagnostic in order of position (stable for equal positions), each as
  // "FILE:LINE:COL: error: MESSAGE\n", then the source line exactly as in the file, then a
  // caret line: the line's tabs kept and a space for every other character before COL, then
  // `^`. COL counts bytes. Unknown position: "FILE: error: MESSAGE\n" alone. A line longer than
  // kQuoteWidth bytes is quoted as a window of that width around COL, "..." marking each cut.
  // Only the first kMaxShown are formatted, then "FILE: and N more errors and warnings\n".
  std::string Format() const;

 private:
  std::string file_;
  std::string source_;
  std::vector<Diagnostic> diagnostics_;
  size_t errors_ = 0;
};

// The candidate closest to `word` by edit distance, when close enough to be a likely typo;
// empty otherwise. Used for "did you mean 'needs'?". Words and candidates longer than
// kMaxSuggestLength are never compared (typos are looked for in names, not in long text).
constexpr size_t kMaxSuggestLength = 64;
std::string SuggestClosest(std::string_view word, const std::vector<std::string>& candidates);

// The one did-you-mean wording: " (did you mean 'PREFIXx'?)" with x = SuggestClosest, or empty
// when nothing is close. `prefix` qualifies the suggestion ("build.", "vars.").
std::string DidYouMeanHint(std::string_view word, const std::vector<std::string>& candidates,
                           std::string_view prefix = "");

}  // namespace runner
