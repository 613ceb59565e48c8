// Errors and warnings about a file, reported as `FILE:LINE:COL: error: MESSAGE`, then the
// source line and a caret under the column (the form compilers and ninja use).
#pragma once

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

  bool HasErrors() const;
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  const std::string& file() const { return file_; }

  // Every diagnostic in order of position (stable for equal positions), each as
  // "FILE:LINE:COL: error: MESSAGE\n", then the source line exactly as in the file, then a
  // caret line: the line's tabs kept and a space for every other character before COL, then
  // `^`. COL counts bytes (as yaml-cpp does). Unknown position: "FILE: error: MESSAGE\n" alone.
  std::string Format() const;

 private:
  std::string file_;
  std::string source_;
  std::vector<Diagnostic> diagnostics_;
};

// The candidate closest to `word` by edit distance, when close enough to be a likely typo;
// empty otherwise. Used for "did you mean 'needs'?".
std::string SuggestClosest(std::string_view word, const std::vector<std::string>& candidates);

// The one did-you-mean wording: " (did you mean 'PREFIXx'?)" with x = SuggestClosest, or empty
// when nothing is close. `prefix` qualifies the suggestion ("build.", "vars.").
std::string DidYouMeanHint(std::string_view word, const std::vector<std::string>& candidates,
                           std::string_view prefix = "");

}  // namespace runner
