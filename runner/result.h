// Errors as values at module edges.
#pragma once

#include <expected>
#include <string>

namespace runner {

// A value or a message a user can act on (what went wrong, where, what to do).
template <class T>
using Result = std::expected<T, std::string>;

// Success or a message.
using Status = std::expected<void, std::string>;

inline std::unexpected<std::string> Fail(std::string message) {
  return std::unexpected<std::string>(std::move(message));
}

}  // namespace runner
