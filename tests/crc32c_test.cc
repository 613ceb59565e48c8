#include "runner/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace runner {
namespace {

std::string Bytes(int first, int step) {
  std::string out;
  for (int i = 0; i < 32; ++i) out += static_cast<char>(first + i * step);
  return out;
}

// RFC 3720 B.4 and the usual check value, by both implementations.
TEST(Crc32cTest, KnownVectors) {
  const std::pair<std::string, std::uint32_t> vectors[] = {
      {"", 0},
      {"123456789", 0xE3069283},
      {std::string(32, '\0'), 0x8A9136AA},
      {std::string(32, '\xFF'), 0x62A8AB43},
      {Bytes(0, 1), 0x46DD794E},
      {Bytes(31, -1), 0x113FDB5C},
  };
  for (const auto& [data, crc] : vectors) {
    EXPECT_EQ(Crc32c(data), crc) << data.size();
    EXPECT_EQ(Crc32cByTable(data), crc) << data.size();
  }
}

TEST(Crc32cTest, ContinuesAcrossPiecesAndAgreesWithTheTableAtEveryLength) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 131 + 7);
  for (size_t size = 0; size <= data.size(); size += 37) {
    std::string_view piece(data.data(), size);
    EXPECT_EQ(Crc32c(piece), Crc32cByTable(piece)) << size;
  }
  for (size_t cut : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    std::string_view all(data);
    EXPECT_EQ(Crc32c(all.substr(cut), Crc32c(all.substr(0, cut))), Crc32c(all)) << cut;
  }
}

TEST(Crc32cTest, Base64OfTheBigEndianBytes) {
  EXPECT_EQ(Crc32cBase64("123456789"), "4waSgw==");  // E3 06 92 83
  EXPECT_EQ(Crc32cBase64(""), "AAAAAA==");
}

}  // namespace
}  // namespace runner
