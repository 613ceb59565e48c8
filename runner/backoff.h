// Waiting between attempts, one rule for every client that retries (AWS, GitHub, Git) or polls
// (deploys): exponential backoff, and a wait that a cancel cuts short.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

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

// Waits `delay` in slices of at most `slice`, polling `cancelled` (empty: never) before each;
// false as soon as it holds, true once the whole delay has passed.
inline bool WaitUnlessCancelled(std::chrono::milliseconds delay,
                                const std::function<bool()>& cancelled,
                                std::chrono::milliseconds slice = std::chrono::milliseconds(50)) {
  auto deadline = std::chrono::steady_clock::now() + delay;
  for (;;) {
    if (cancelled && cancelled()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(slice, deadline - now));
  }
}

}  // namespace runner
