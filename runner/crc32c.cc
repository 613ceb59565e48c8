#include "runner/crc32c.h"

#include <array>
#include <cstring>
#include <string_view>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "runner/crypto.h"

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

// The crc32 instruction takes three cycles to give its result but can start one a cycle, so
// three streams over adjacent stretches run about three times as fast as one; the registers
// are then joined by the linearity of the CRC: crc(A B) = shift(crc(A), |B|) ^ crc0(B), where
// shift appends |B| zero bytes (a linear map, tabulated per byte of the register).
constexpr size_t kStretch = 2048;

struct Shift {
  std::array<std::array<std::uint32_t, 256>, 4> table{};

  Shift() {
    static const unsigned char kZeros[kStretch] = {};
    std::array<std::uint32_t, 32> bit{};
    for (int i = 0; i < 32; ++i) bit[i] = HardwareUpdate(std::uint32_t{1} << i, kZeros, kStretch);
    for (int byte = 0; byte < 4; ++byte) {
      for (std::uint32_t value = 0; value < 256; ++value) {
        for (int i = 0; i < 8; ++i) {
          if ((value >> i) & 1) table[byte][value] ^= bit[byte * 8 + i];
        }
      }
    }
  }

  std::uint32_t operator()(std::uint32_t crc) const {
    return table[0][crc & 0xFF] ^ table[1][(crc >> 8) & 0xFF] ^ table[2][(crc >> 16) & 0xFF] ^
           table[3][crc >> 24];
  }
};

__attribute__((target("sse4.2"))) std::uint32_t ThreeStreamUpdate(std::uint32_t crc,
                                                                  const unsigned char* data,
                                                                  size_t size) {
  static const Shift kShift;
  for (; size >= 3 * kStretch; data += 3 * kStretch, size -= 3 * kStretch) {
    std::uint64_t a = crc;
    std::uint64_t b = 0;
    std::uint64_t c = 0;
    for (size_t i = 0; i < kStretch; i += 8) {
      std::uint64_t words[3];
      std::memcpy(&words[0], data + i, 8);
      std::memcpy(&words[1], data + kStretch + i, 8);
      std::memcpy(&words[2], data + 2 * kStretch + i, 8);
      a = _mm_crc32_u64(a, words[0]);
      b = _mm_crc32_u64(b, words[1]);
      c = _mm_crc32_u64(c, words[2]);
    }
    crc = kShift(kShift(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^
          static_cast<std::uint32_t>(c);
  }
  return HardwareUpdate(crc, data, size);
}

const bool kHasSse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

std::uint32_t Crc32c(std::string_view data, std::uint32_t crc) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
#if defined(__x86_64__)
  if (kHasSse42) return ~ThreeStreamUpdate(~crc, bytes, data.size());
#endif
  return Crc32cByTable(data, crc);
}

std::uint32_t Crc32cByTable(std::string_view data, std::uint32_t crc) {
  return ~TableUpdate(~crc, reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

std::string Crc32cBase64(std::uint32_t crc) {
  const char bytes[4] = {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                         static_cast<char>(crc >> 8), static_cast<char>(crc)};
  return Base64(std::string_view(bytes, sizeof bytes));
}

}  // namespace runner
