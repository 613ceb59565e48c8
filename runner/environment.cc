#include "runner/environment.h"

#include <unistd.h>

#include <cstring>

namespace runner {

Environment CurrentEnvironment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* eq = std::strchr(*entry, '=');
    if (eq == nullptr) continue;
    env.insert_or_assign(std::string(*entry, static_cast<size_t>(eq - *entry)),
                         std::string(eq + 1));
  }
  return env;
}

std::optional<std::string> Lookup(const Environment& env, std::string_view name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> ToEnvp(const Environment& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

std::vector<std::string> ToEnvp(const std::vector<std::string>& base,
                                const Environment& overrides) {
  std::vector<std::string> out;
  out.reserve(base.size() + overrides.size());
  auto next = overrides.begin();
  auto put_next = [&] {
    out.push_back(next->first + "=" + next->second);
    ++next;
  };
  for (const std::string& entry : base) {
    std::string_view key = std::string_view(entry).substr(0, entry.find('='));
    while (next != overrides.end() && next->first < key) put_next();
    if (next != overrides.end() && next->first == key) {
      put_next();
    } else {
      out.push_back(entry);
    }
  }
  while (next != overrides.end()) put_next();
  return out;
}

}  // namespace runner
