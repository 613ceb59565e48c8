#include "runner/glob.h"

#include <string>
#include <vector>

namespace runner {

namespace {

struct Token {
  enum class Kind {
    kLiteral,          // `c` or `\c`
    kAnyChar,          // `?`
    kClass,            // `[...]`
    kStar,             // `*`
    kDoubleStar,       // `**`
    kDoubleStarSlash,  // `**/`: nothing, or anything that ends with `/`
  };
  Kind kind = Kind::kLiteral;
  char literal = 0;
  std::string ranges;  // kClass: pairs of inclusive bounds
  bool negated = false;
};

// Parses `[...]` starting at pattern[i] == '['. Returns false (the `[` is then literal) when
// the class is not closed.
bool ParseClass(std::string_view pattern, size_t& i, Token& token) {
  size_t j = i + 1;
  token.kind = Token::Kind::kClass;
  if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
    token.negated = true;
    ++j;
  }
  bool first = true;
  while (j < pattern.size() && (first || pattern[j] != ']')) {
    first = false;
    char low = pattern[j];
    if (low == '\\' && j + 1 < pattern.size()) low = pattern[++j];
    char high = low;
    if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
      j += 2;
      high = pattern[j];
      if (high == '\\' && j + 1 < pattern.size()) high = pattern[++j];
    }
    token.ranges += low;
    token.ranges += high;
    ++j;
  }
  if (j >= pattern.size()) return false;
  i = j + 1;
  return true;
}

std::vector<Token> Compile(std::string_view pattern) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < pattern.size()) {
    char c = pattern[i];
    Token token;
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        if (i + 2 < pattern.size() && pattern[i + 2] == '/') {
          token.kind = Token::Kind::kDoubleStarSlash;
          i += 3;
        } else {
          token.kind = Token::Kind::kDoubleStar;
          i += 2;
        }
      } else {
        token.kind = Token::Kind::kStar;
        ++i;
      }
    } else if (c == '?') {
      token.kind = Token::Kind::kAnyChar;
      ++i;
    } else if (c == '[' && ParseClass(pattern, i, token)) {
      // `i` is past the class.
    } else {
      token = Token();
      if (c == '\\' && i + 1 < pattern.size()) ++i;
      token.literal = pattern[i];
      ++i;
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

bool ClassMatches(const Token& token, char c) {
  if (c == '/') return false;
  bool in = false;
  for (size_t k = 0; k + 1 < token.ranges.size(); k += 2) {
    if (token.ranges[k] <= c && c <= token.ranges[k + 1]) in = true;
  }
  return in != token.negated;
}

}  // namespace

// A simulation of the pattern's automaton over all states at once: time is
// O(pattern * text) whatever the pattern, where backtracking is exponential on `*a*a*a*b`.
// State k means "tokens before k are matched" (for a `**/` at k: it has consumed nothing or
// text ending with `/`); state n + 1 + k means "inside the `**/` at k, having consumed text
// that does not end with `/`".
bool GlobMatch(std::string_view pattern, std::string_view text) {
  std::vector<Token> tokens = Compile(pattern);
  const size_t n = tokens.size();
  const size_t inside = n + 1;
  std::vector<char> current(2 * n + 2, 0);
  std::vector<char> next(2 * n + 2, 0);

  // Star tokens match the empty string; states are visited in increasing order so one
  // forward pass closes over runs of them.
  auto close = [&](std::vector<char>& states) {
    for (size_t k = 0; k < n; ++k) {
      if (!states[k]) continue;
      Token::Kind kind = tokens[k].kind;
      if (kind == Token::Kind::kStar || kind == Token::Kind::kDoubleStar ||
          kind == Token::Kind::kDoubleStarSlash) {
        states[k + 1] = 1;
      }
    }
  };

  current[0] = 1;
  close(current);
  for (char c : text) {
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (size_t k = 0; k < n; ++k) {
      const Token& token = tokens[k];
      if (current[k]) {
        switch (token.kind) {
          case Token::Kind::kLiteral:
            if (c == token.literal) next[k + 1] = 1;
            break;
          case Token::Kind::kAnyChar:
            if (c != '/') next[k + 1] = 1;
            break;
          case Token::Kind::kClass:
            if (ClassMatches(token, c)) next[k + 1] = 1;
            break;
          case Token::Kind::kStar:
            if (c != '/') next[k] = 1;
            break;
          case Token::Kind::kDoubleStar:
            next[k] = 1;
            break;
          case Token::Kind::kDoubleStarSlash:
            // Back at state k after a `/`: the closure then lets the rest match from here.
            next[c == '/' ? k : inside + k] = 1;
            break;
        }
      }
      if (current[inside + k]) next[c == '/' ? k : inside + k] = 1;
    }
    close(next);
    for (char state : next) any = any || state;
    if (!any) return false;
    current.swap(next);
  }
  return current[n] != 0;
}

bool AnyMatch(const std::vector<std::string>& globs, std::string_view text) {
  for (const std::string& glob : globs) {
    if (GlobMatch(glob, text)) return true;
  }
  return false;
}

bool HasGlobSyntax(std::string_view text) {
  return text.find_first_of("*?[\\") != std::string_view::npos;
}

}  // namespace runner
