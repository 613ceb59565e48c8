// Helpers the libFuzzer harnesses share: views of the input and a split of it into pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace runner::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// `text` cut at every NUL byte (so one input can carry several fields); at least `count`
// fields, the missing ones empty.
inline std::vector<std::string_view> Fields(std::string_view text, size_t count) {
  std::vector<std::string_view> fields;
  while (true) {
    size_t nul = text.find('\0');
    fields.push_back(text.substr(0, nul));
    if (nul == std::string_view::npos) break;
    text.remove_prefix(nul + 1);
  }
  while (fields.size() < count) fields.emplace_back();
  return fields;
}

// A deterministic split of `text` into pieces of 1..max_piece bytes, driven by `seed`, so that
// every input is replayed the same way (a crash reproduces from the saved file alone).
inline std::vector<std::string_view> Pieces(std::string_view text, uint64_t seed,
                                            size_t max_piece) {
  std::vector<std::string_view> pieces;
  uint64_t state = seed | 1;
  while (!text.empty()) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    size_t size = 1 + static_cast<size_t>(state % max_piece);
    if (size > text.size()) size = text.size();
    pieces.push_back(text.substr(0, size));
    text.remove_prefix(size);
  }
  return pieces;
}

// A seed from the input's bytes (FNV-1a), for Pieces.
inline uint64_t SeedOf(std::string_view text) {
  uint64_t hash = 1469598103934665603ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return hash;
}

// Stops the run with a message: the harness's own assertion failed.
[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz assertion failed: %s\n", what.c_str());
  std::abort();
}

}  // namespace runner::fuzz
