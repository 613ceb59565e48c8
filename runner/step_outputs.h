// Step outputs written to the file named by RUNNER_OUTPUT (SPEC section 3).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/result.h"

namespace runner {

using Outputs = std::vector<std::pair<std::string, std::string>>;

// Parses `name=value` lines and `name<<DELIMITER` ... `DELIMITER` blocks (the value is the
// lines between, joined by newlines, without the last newline). Blank lines are ignored.
// CRLF line endings are accepted; inside a block whose first line ends in LF alone, a CR before
// a newline belongs to the value (so any value written as a block reads back unchanged).
// A later value of a name replaces the earlier one, keeping its place.
// Fails with the line number for a malformed line, a bad name or an unterminated block.
Result<Outputs> ParseStepOutputs(std::string_view text);

// Sets `name` to `value` in `outputs`, replacing an earlier value in place.
void SetOutput(Outputs& outputs, std::string name, std::string value);

}  // namespace runner
