// The process environment as a value, so that detection and step set-up are testable.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

using Environment = std::map<std::string, std::string, std::less<>>;

// The current process's environment.
Environment CurrentEnvironment();

// The value of `name`, or nullopt when unset. An empty value counts as set.
std::optional<std::string> Lookup(const Environment& env, std::string_view name);

// "KEY=VALUE" strings for execve, in the order of their keys.
std::vector<std::string> ToEnvp(const Environment& env);

// ToEnvp of an environment with `overrides` set over it, given that environment's ToEnvp:
// what many processes share is converted once.
std::vector<std::string> ToEnvp(const std::vector<std::string>& base, const Environment& overrides);

}  // namespace runner
