// Bytes as lowercase hexadecimal text and back (digests, signatures, ETags).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace runner {

// Two lowercase hex digits per byte of `bytes`.
std::string HexEncode(std::string_view bytes);
std::string HexEncode(const unsigned char* bytes, size_t size);

// The bytes `hex` spells (upper or lower case digits), or nullopt when its length is odd or it
// holds anything but hex digits.
std::optional<std::string> HexDecode(std::string_view hex);

}  // namespace runner
