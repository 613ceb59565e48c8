#include "runner/masker.h"

#include <algorithm>

namespace runner {

namespace {

constexpr std::string_view kMask = "***";

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

SecretMasker::SecretMasker(const std::vector<std::string>& values) {
  for (const std::string& value : values) {
    if (value.empty()) continue;
    secrets_.push_back(value);
    if (value.find('\n') == std::string::npos) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t end = rest.find('\n');
      std::string_view line = rest.substr(0, end);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!IsBlank(line)) secrets_.emplace_back(line);
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
  for (const std::string& secret : secrets_) {
    first_bytes_[static_cast<unsigned char>(secret[0])] = true;
  }
}

size_t SecretMasker::MaskInto(std::string_view text, bool hold_back, std::string& out) const {
  size_t i = 0;
  while (i < text.size()) {
    if (!first_bytes_[static_cast<unsigned char>(text[i])]) {
      out += text[i++];
      continue;
    }
    std::string_view rest = text.substr(i);
    // A rest that is a proper prefix of a secret might complete with the next piece; deciding
    // now could print the start of a longer secret.
    if (hold_back) {
      bool maybe = std::any_of(secrets_.begin(), secrets_.end(), [&](const std::string& s) {
        return rest.size() < s.size() && std::string_view(s).starts_with(rest);
      });
      if (maybe) return i;
    }
    auto match = std::find_if(secrets_.begin(), secrets_.end(),
                              [&](const std::string& s) { return rest.starts_with(s); });
    if (match != secrets_.end()) {
      out += kMask;
      i += match->size();
    } else {
      out += text[i++];
    }
  }
  return i;
}

std::string SecretMasker::Mask(std::string_view text) const {
  if (secrets_.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  MaskInto(text, false, out);
  return out;
}

std::string SecretMasker::Stream::Feed(std::string_view data) {
  if (masker_->empty()) return std::string(data);
  pending_.append(data);
  std::string out;
  size_t used = masker_->MaskInto(pending_, true, out);
  pending_.erase(0, used);
  return out;
}

std::string SecretMasker::Stream::Finish() {
  std::string out = masker_->Mask(pending_);
  pending_.clear();
  return out;
}

}  // namespace runner
