#include "runner/masker.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "runner/crypto.h"

namespace runner {

namespace {

// Preferred mask bytes, in order; any other byte no secret holds will do after them.
constexpr std::string_view kMaskBytes = "*#~%@!?^=_-+x";

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// Percent-encoding of `value`, keeping the bytes of `keep` and the alphanumerics as they are.
std::string PercentEncode(std::string_view value, std::string_view keep, const char* hex,
                          bool plus_for_space) {
  std::string out;
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x80 && std::isalnum(byte)) || keep.find(c) != std::string_view::npos) {
      out += c;
    } else if (c == ' ' && plus_for_space) {
      out += '+';
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
    }
  }
  return out;
}

// The forms in which a value travels besides its own: in URLs and DSNs (as RFC 3986,
// JavaScript's encodeURIComponent, Python's quote, PHP's urlencode and the encoders that keep
// only alphanumerics encode it, each also form-encoded) and base64.
std::vector<std::string> EncodedForms(std::string_view value) {
  std::vector<std::string> forms;
  // Bytes each encoder keeps besides the alphanumerics.
  constexpr std::array<std::string_view, 5> kKeep = {"-._~", "-._~!'()*", "-._~/", "-._", ""};
  for (std::string_view keep : kKeep) {
    for (const char* hex : {"0123456789ABCDEF", "0123456789abcdef"}) {
      for (bool plus : {false, true}) forms.push_back(PercentEncode(value, keep, hex, plus));
    }
  }
  std::string padded = Base64(value);
  std::string url_safe = padded;
  std::replace(url_safe.begin(), url_safe.end(), '+', '-');
  std::replace(url_safe.begin(), url_safe.end(), '/', '_');
  for (std::string form : {padded, url_safe}) {
    forms.push_back(form);
    form.erase(form.find_last_not_of('=') + 1);
    forms.push_back(std::move(form));
  }
  return forms;
}

}  // namespace

SecretMasker::SecretMasker(const std::vector<std::string>& values) {
  for (const std::string& value : values) Add(value);
}

void SecretMasker::Add(std::string_view value) {
  if (value.empty()) return;
  AddForm(std::string(value));
  for (std::string& form : EncodedForms(value)) AddForm(std::move(form));
  if (value.find('\n') != std::string_view::npos) {
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t end = rest.find('\n');
      std::string_view line = rest.substr(0, end);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!IsBlank(line)) AddForm(std::string(line));
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  // A mask made of a byte that no secret holds cannot complete one with the text around it.
  auto free_byte = std::find_if(kMaskBytes.begin(), kMaskBytes.end(), [&](char c) {
    return !used_bytes_[static_cast<unsigned char>(c)];
  });
  if (free_byte != kMaskBytes.end()) {
    mask_.assign(3, *free_byte);
    return;
  }
  // Only a set of secrets holding all 256 byte values leaves none free; keep the last mask then.
  for (int byte = 1; byte < 256; ++byte) {
    if (!used_bytes_[byte]) {
      mask_.assign(3, static_cast<char>(byte));
      return;
    }
  }
}

void SecretMasker::AddForm(std::string value) {
  if (std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end()) return;
  first_bytes_[static_cast<unsigned char>(value[0])] = true;
  for (char c : value) used_bytes_[static_cast<unsigned char>(c)] = true;
  secrets_.push_back(std::move(value));
}

size_t SecretMasker::MaskInto(std::string_view text, bool hold_back, std::string& out) const {
  size_t i = 0;
  while (i < text.size()) {
    size_t plain = i;
    while (plain < text.size() && !first_bytes_[static_cast<unsigned char>(text[plain])]) ++plain;
    out.append(text.substr(i, plain - i));
    i = plain;
    if (i == text.size()) break;
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
      out += mask_;
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
  std::string out;
  out.reserve(pending_.size() + data.size());
  // Without a held-back tail, `data` is masked where it is.
  std::string_view text = data;
  if (!pending_.empty()) {
    pending_.append(data);
    text = pending_;
  }
  size_t used = masker_->MaskInto(text, true, out);
  pending_ = std::string(text.substr(used));
  return out;
}

std::string SecretMasker::Stream::Finish() {
  std::string out = masker_->Mask(pending_);
  pending_.clear();
  return out;
}

}  // namespace runner
