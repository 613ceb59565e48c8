#include "runner/utf8.h"

namespace runner {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// The length of the valid sequence at `text[i]`, or 0 and in `invalid` the length of the
// maximal invalid subpart to replace (at least 1).
size_t SequenceLength(std::string_view text, size_t i, size_t& invalid) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  unsigned char lead = byte(0);
  invalid = 1;
  if (lead < 0x80) return 1;
  size_t length = 0;
  // The second byte's range depends on the lead: that is what rules out overlong forms,
  // surrogates and code points above U+10FFFF (RFC 3629 section 4).
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) return 0;
    unsigned char c = byte(k);
    if (k == 1 ? (c < low || c > high) : (c < 0x80 || c > 0xBF)) return 0;
    invalid = k + 1;
  }
  return length;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t invalid = 0;
    size_t length = SequenceLength(text, i, invalid);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string MakeValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t invalid = 0;
    size_t length = SequenceLength(text, i, invalid);
    if (length > 0) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += kReplacement;
      i += invalid;
    }
  }
  return out;
}

}  // namespace runner
