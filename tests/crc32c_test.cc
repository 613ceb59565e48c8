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

// Long inputs go three streams at a time (blocks of 3 x 2 KiB) and the registers are joined;
// every length around the block edges, and pieces cut anywhere, give the table's result.
TEST(Crc32cTest, LongInputsAgreeWithTheTableAcrossBlockEdges) {
  std::string data;
  for (int i = 0; i < 64 * 1024 + 13; ++i) data += static_cast<char>((i * 2654435761u) >> 13);
  const std::string_view all(data);
  for (size_t block : {6144u, 12288u, 61440u}) {
    for (size_t size = block - 9; size <= block + 9; ++size) {
      EXPECT_EQ(Crc32c(all.substr(0, size)), Crc32cByTable(all.substr(0, size))) << size;
    }
  }
  EXPECT_EQ(Crc32c(all), Crc32cByTable(all));
  for (size_t cut : {1u, 2047u, 2048u, 6143u, 6144u, 6145u, 40000u}) {
    EXPECT_EQ(Crc32c(all.substr(cut), Crc32c(all.substr(0, cut))), Crc32cByTable(all)) << cut;
  }
  // A start value other than zero runs through the joined streams too.
  EXPECT_EQ(Crc32c(all, 0xDEADBEEF), Crc32cByTable(all, 0xDEADBEEF));
  // Zeros: the result comes from the start value carried through every join.
  std::string zeros(1 << 20, '\0');
  EXPECT_EQ(Crc32c(zeros), Crc32cByTable(zeros));
}

TEST(Crc32cTest, Base64OfTheBigEndianBytes) {
  EXPECT_EQ(Crc32cBase64(Crc32c("123456789")), "4waSgw==");  // E3 06 92 83
  EXPECT_EQ(Crc32cBase64(0), "AAAAAA==");
  EXPECT_EQ(Crc32cBase64(0xFFFFFFFF), "/////w==");
}

}  // namespace
}  // namespace runner
