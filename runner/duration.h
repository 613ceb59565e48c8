// Durations as written in pipeline files: `90s`, `10m`, `1h30m`, `500ms`.
#pragma once

#include <string>
#include <string_view>

#include "runner/pipeline.h"
#include "runner/result.h"

namespace runner {

// Accepts one or more NUMBER UNIT groups (units h, m, s, ms), largest unit first, e.g. `1h30m`.
// A bare number is an error (the unit must be explicit). The result must be positive.
Result<Duration> ParseDuration(std::string_view text);

// `1h2m3s`, `45s`, `1.5s`: short human form used in the console and reports.
std::string FormatDuration(Duration d);

}  // namespace runner
