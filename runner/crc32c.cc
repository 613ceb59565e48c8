#include "runner/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace runner {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78;  // 0x1EDC6F41 reflected

constexpr std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) != 0 ? kPolynomial : 0);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kTable = MakeTable();

// Both take and return the inverted register.
std::uint32_t TableUpdate(std::uint32_t crc, const unsigned char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t HardwareUpdate(std::uint32_t crc,
                                                               const unsigned char* data,
                                                               size_t size) {
  std::uint64_t wide = crc;
  for (; size >= 8; data += 8, size -= 8) {
    std::uint64_t word;
    std::memcpy(&word, data, sizeof(word));
    wide = _mm_crc32_u64(wide, word);
  }
  auto narrow = static_cast<std::uint32_t>(wide);
  for (; size > 0; ++data, --size) narrow = _mm_crc32_u8(narrow, *data);
  return narrow;
}

const bool kHasSse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

std::uint32_t Crc32c(std::string_view data, std::uint32_t crc) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
#if defined(__x86_64__)
  if (kHasSse42) return ~HardwareUpdate(~crc, bytes, data.size());
#endif
  return Crc32cByTable(data, crc);
}

std::uint32_t Crc32cByTable(std::string_view data, std::uint32_t crc) {
  return ~TableUpdate(~crc, reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

std::string Crc32cBase64(std::string_view data) {
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::uint32_t crc = Crc32c(data);
  // 4 bytes: 32 bits in six 6-bit groups (the last padded with four zero bits), then "==".
  std::string out;
  for (int shift = 26; shift >= 0; shift -= 6) out += kAlphabet[(crc >> shift) & 0x3F];
  out += kAlphabet[(crc << 4) & 0x3F];
  out += "==";
  return out;
}

}  // namespace runner
