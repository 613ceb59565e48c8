#include "runner/step_outputs.h"

#include <algorithm>

namespace runner {

namespace {

bool IsOutputName(std::string_view name) {
  if (name.empty()) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  if (name[0] >= '0' && name[0] <= '9') return false;
  return std::all_of(name.begin(), name.end(), word);
}

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

void SetOutput(Outputs& outputs, std::string name, std::string value) {
  for (auto& [key, old] : outputs) {
    if (key == name) {
      old = std::move(value);
      return;
    }
  }
  outputs.emplace_back(std::move(name), std::move(value));
}

Result<Outputs> ParseStepOutputs(std::string_view text) {
  std::vector<std::string_view> lines;  // without a CR before the newline
  std::vector<bool> raw_ends_with_cr;   // whether a CR was stripped
  while (!text.empty()) {
    size_t end = text.find('\n');
    lines.push_back(StripCr(text.substr(0, end)));
    raw_ends_with_cr.push_back(lines.back().size() != text.substr(0, end).size());
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  Outputs outputs;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    std::string where = "RUNNER_OUTPUT line " + std::to_string(i + 1) + ": ";
    size_t heredoc = line.find("<<");
    size_t eq = line.find('=');
    if (heredoc != std::string_view::npos && (eq == std::string_view::npos || heredoc < eq)) {
      std::string_view name = line.substr(0, heredoc);
      std::string_view delimiter = line.substr(heredoc + 2);
      if (!IsOutputName(name)) return Fail(where + "bad output name '" + std::string(name) + "'");
      if (delimiter.empty()) return Fail(where + "'" + std::string(name) + "<<' needs a delimiter");
      // The value's lines as written: a CR before a newline is part of the value unless the
      // block's own first line ends in CRLF (a file written with CRLF line endings). So a
      // value that holds "\r\n" or ends in "\r", as `runner __step` writes it (LF only),
      // reads back unchanged.
      bool crlf_file = raw_ends_with_cr[i];
      std::string value;
      size_t j = i + 1;
      for (; j < lines.size() && lines[j] != delimiter; ++j) {
        if (j > i + 1) value += '\n';
        value += lines[j];
        if (raw_ends_with_cr[j] && !crlf_file) value += '\r';
      }
      if (j == lines.size()) {
        return Fail(where + "no closing '" + std::string(delimiter) + "' for output '" +
                    std::string(name) + "'");
      }
      SetOutput(outputs, std::string(name), std::move(value));
      i = j;
      continue;
    }
    if (eq == std::string_view::npos) {
      return Fail(where + "expected NAME=VALUE or NAME<<DELIMITER, got '" + std::string(line) +
                  "'");
    }
    std::string_view name = line.substr(0, eq);
    if (!IsOutputName(name)) return Fail(where + "bad output name '" + std::string(name) + "'");
    SetOutput(outputs, std::string(name), std::string(line.substr(eq + 1)));
  }
  return outputs;
}

}  // namespace runner
