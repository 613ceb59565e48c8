// Replaces secret values with a mask (SPEC section 5): in the console, the logs and the reports.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runner {

class SecretMasker {
 public:
  // Empty values are ignored. Each value is masked as written, URL-encoded (percent-encoding
  // with upper- or lower-case hex, with or without `+` for a space) and base64 (standard and
  // URL-safe, with and without padding). A multi-line value is masked whole and, since a step
  // may print only part of it, each of its non-blank lines too.
  explicit SecretMasker(const std::vector<std::string>& values);

  // Learns one more secret, as the constructor does. Streams made earlier mask it from their
  // next piece on. Not thread-safe: the build uses one masker from one thread.
  void Add(std::string_view value);

  // `text` with every occurrence of a secret replaced by the mask (longest match first). The
  // mask is `***` made of a byte no secret contains (`*` unless one does), so the result never
  // holds a secret, not even where a mask meets the text around it.
  std::string Mask(std::string_view text) const;

  // Masks a stream that arrives in pieces: a secret split across two writes is still masked,
  // because a tail that may be the start of a secret is held back until the next piece (or
  // Finish) decides it. It holds back less than the longest secret, and each Feed takes time
  // linear in its piece.
  class Stream {
   public:
    explicit Stream(const SecretMasker& masker) : masker_(&masker) {}
    // The masked text that is safe to release now.
    std::string Feed(std::string_view data);
    // Everything still held back, masked.
    std::string Finish();

   private:
    const SecretMasker* masker_;
    std::string pending_;
  };

  bool empty() const { return secrets_.empty(); }

 private:
  void AddForm(std::string value);
  // Masks `text` from the start; stops where the rest could still become a secret when
  // `hold_back` is set. Returns how many bytes of `text` were consumed.
  size_t MaskInto(std::string_view text, bool hold_back, std::string& out) const;

  std::vector<std::string> secrets_;  // longest first
  bool first_bytes_[256] = {};
  bool used_bytes_[256] = {};  // every byte of every secret
  std::string mask_ = "***";
};

}  // namespace runner
