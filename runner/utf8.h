// UTF-8 checks, one rule everywhere (RFC 3629): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
#pragma once

#include <string>
#include <string_view>

namespace runner {

// Whether `text` is valid UTF-8 under the rule above.
bool IsValidUtf8(std::string_view text);

// `text` with each maximal invalid subpart (Unicode's "substitution of maximal subparts", as
// browsers and ICU do) replaced by U+FFFD; valid text comes back unchanged.
std::string MakeValidUtf8(std::string_view text);

}  // namespace runner
