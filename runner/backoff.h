// Exponential backoff between attempts, one rule for every client that retries (AWS, GitHub).
#pragma once

#include <algorithm>
#include <chrono>

namespace runner {

// `first` doubled once for each earlier retry (retry 0 waits `first`), never above `max`; no
// overflow however many retries.
inline std::chrono::milliseconds DoublingDelay(std::chrono::milliseconds first,
                                               std::chrono::milliseconds max, int retry) {
  if (first.count() <= 0) return std::chrono::milliseconds(0);
  auto delay = first;
  for (int i = 0; i < retry && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

}  // namespace runner
