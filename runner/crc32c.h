// CRC32C (Castagnoli, the iSCSI polynomial of RFC 3720), S3's x-amz-checksum-crc32c: the
// SSE4.2 crc32 instruction (three streams at once) when the CPU has it, a table otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace runner {

// The CRC32C of `data`; pass an earlier result as `crc` to continue over more data.
std::uint32_t Crc32c(std::string_view data, std::uint32_t crc = 0);
// The same by table only, whatever the CPU (what Crc32c falls back to; tests compare the two).
std::uint32_t Crc32cByTable(std::string_view data, std::uint32_t crc = 0);

// Base64 of the big-endian 4 bytes of `crc` (a Crc32c result), as x-amz-checksum-crc32c
// carries it.
std::string Crc32cBase64(std::uint32_t crc);

}  // namespace runner
