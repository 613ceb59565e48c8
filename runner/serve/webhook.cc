#include "runner/serve/webhook.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "runner/crypto.h"
#include "runner/hex.h"

namespace runner::serve {

namespace {

using nlohmann::json;

constexpr std::string_view kSignaturePrefix = "sha256=";
constexpr std::size_t kSha256Size = 32;

// GitHub's payloads nest about six levels; anything far deeper is not from GitHub.
constexpr std::size_t kMaxDepth = 64;

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// `+` as a space and each %XX as its byte. `offset` is where `text` starts in the body, for the
// message.
Result<std::string> FormDecode(std::string_view text, std::size_t offset) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      std::optional<std::string> byte =
          i + 2 < text.size() ? HexDecode(text.substr(i + 1, 2)) : std::nullopt;
      if (!byte) {
        return Fail(fmt::format(
            "form-encoded webhook body: the '%' at byte {} is not followed by two hex digits",
            offset + i));
      }
      out += *byte;
      i += 2;
    }
  }
  return out;
}

// One pass over the SAX events of a delivery: checks the syntax and the nesting, and picks out
// repository.full_name without building a document (nlohmann's parser itself keeps one bit per
// open container and no recursion, so stopping at kMaxDepth bounds everything).
class DeliveryScanner {
 public:
  explicit DeliveryScanner(std::string_view what) : what_(what) {}

  bool null() { return Value(Scalar::kNull); }
  bool boolean(bool) { return Value(Scalar::kOther); }
  bool number_integer(json::number_integer_t) { return Value(Scalar::kOther); }
  bool number_unsigned(json::number_unsigned_t) { return Value(Scalar::kOther); }
  bool number_float(json::number_float_t, const json::string_t&) { return Value(Scalar::kOther); }
  bool string(json::string_t& text) { return Value(Scalar::kString, &text); }
  bool binary(json::binary_t&) { return Value(Scalar::kOther); }
  bool start_object(std::size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) { return Open(false); }
  bool end_array() { return Close(); }

  bool key(json::string_t& name) {
    next_ = Next::kOther;
    if (depth_ == 1 && name == "repository") {
      if (seen_repository_) return Error("more than one 'repository' member");
      seen_repository_ = true;
      next_ = Next::kRepository;
    } else if (depth_ == 2 && in_repository_ && name == "full_name") {
      if (seen_full_name_) return Error("more than one 'repository.full_name' member");
      seen_full_name_ = true;
      next_ = Next::kFullName;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& error) {
    // "[json.exception.parse_error.101] parse error at line 1, column 7: ..." without the tag.
    std::string_view text = error.what();
    std::size_t tag_end = text.find("] ");
    if (tag_end != std::string_view::npos) text.remove_prefix(tag_end + 2);
    return Error(fmt::format("not valid JSON: {}", text));
  }

  const std::string& full_name() const { return full_name_; }
  const std::string& error() const { return error_; }

 private:
  enum class Next { kOther, kRepository, kFullName };
  enum class Scalar { kNull, kString, kOther };

  bool Error(std::string_view message) {
    error_ = fmt::format("{}: {}", what_, message);
    return false;
  }

  // `text` is set for a string. A null repository is no repository.
  bool Value(Scalar scalar, const std::string* text = nullptr) {
    if (depth_ == 0) return Error("the payload must be a JSON object");
    Next next = std::exchange(next_, Next::kOther);
    if (next == Next::kRepository && scalar != Scalar::kNull) {
      return Error("'repository' must be an object");
    }
    if (next == Next::kFullName) {
      if (scalar != Scalar::kString) return Error("'repository.full_name' must be a string");
      full_name_ = *text;
    }
    return true;
  }

  bool Open(bool object) {
    if (depth_ == 0 && !object) return Error("the payload must be a JSON object");
    if (depth_ >= kMaxDepth) return Error(fmt::format("JSON nested deeper than {}", kMaxDepth));
    Next next = std::exchange(next_, Next::kOther);
    if (next == Next::kRepository) {
      if (!object) return Error("'repository' must be an object");
      in_repository_ = true;
    }
    if (next == Next::kFullName) return Error("'repository.full_name' must be a string");
    ++depth_;
    return true;
  }

  bool Close() {
    --depth_;
    if (depth_ == 1) in_repository_ = false;
    return true;
  }

  std::string_view what_;
  std::size_t depth_ = 0;
  Next next_ = Next::kOther;
  bool in_repository_ = false;  // the open object at depth 2 is the repository
  bool seen_repository_ = false;
  bool seen_full_name_ = false;
  std::string full_name_;
  std::string error_;
};

Result<std::string> ScanDelivery(std::string_view text, std::string_view what) {
  DeliveryScanner scanner(what);
  if (!json::sax_parse(text.begin(), text.end(), &scanner)) return Fail(scanner.error());
  return scanner.full_name();
}

// Reads the members of one object of a push payload. The first problem is kept in `error` (its
// message names the member by its path) and the reads after it return empty values, so that a
// parse reads every field and checks once.
class Fields {
 public:
  Fields(const json& object, std::string prefix, std::string& error)
      : object_(object), prefix_(std::move(prefix)), error_(error) {}

  // The member, or nullptr when it is missing or null.
  const json* Find(std::string_view name) const {
    auto it = object_.find(name);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  std::string String(std::string_view name) const {
    const json* value = Find(name);
    if (value == nullptr) return Problem(name, "is missing");
    if (!value->is_string()) return Problem(name, "must be a string");
    return value->get<std::string>();
  }

  // Missing or null: empty.
  std::string OptionalString(std::string_view name) const {
    return Find(name) == nullptr ? std::string() : String(name);
  }

  bool Bool(std::string_view name) const {
    const json* value = Find(name);
    if (value != nullptr && value->is_boolean()) return value->get<bool>();
    Problem(name, "must be true or false");
    return false;
  }

  Fields Object(std::string_view name) const {
    static const json kEmpty = json::object();
    const json* value = Find(name);
    bool object = value != nullptr && value->is_object();
    if (!object) Problem(name, value == nullptr ? "is missing" : "must be an object");
    return Fields(object ? *value : kEmpty, fmt::format("{}{}.", prefix_, name), error_);
  }

  std::string CommitId(std::string_view name) const {
    std::string value = String(name);
    if (value.size() == 40 && HexDecode(value)) return Lower(value);
    return Problem(name, "must be a 40-character hex commit id");
  }

  // Records a problem that is not about one member's type.
  void Report(std::string message) const {
    if (error_.empty()) error_ = fmt::format("push payload: {}", message);
  }

 private:
  std::string Problem(std::string_view name, std::string_view problem) const {
    Report(fmt::format("'{}{}' {}", prefix_, name, problem));
    return {};
  }

  const json& object_;
  std::string prefix_;
  std::string& error_;
};

}  // namespace

SignatureCheck CheckSignature(std::string_view raw_body, std::string_view secret,
                              std::string_view signature_256_header, bool sha1_header_present) {
  if (signature_256_header.empty()) {
    return sha1_header_present ? SignatureCheck::kSha1Only : SignatureCheck::kMissing;
  }
  if (!signature_256_header.starts_with(kSignaturePrefix)) return SignatureCheck::kMalformed;
  std::string_view hex = signature_256_header.substr(kSignaturePrefix.size());
  if (hex.size() != 2 * kSha256Size || !IsLowerHex(hex)) return SignatureCheck::kMalformed;
  if (secret.empty()) return SignatureCheck::kMismatch;
  std::string given = *HexDecode(hex);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  const CryptoLibrary& crypto = Crypto();
  if (crypto.HMAC(crypto.EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                  reinterpret_cast<const unsigned char*>(raw_body.data()), raw_body.size(), digest,
                  &size) == nullptr ||
      size != kSha256Size) {
    return SignatureCheck::kMismatch;
  }
  return crypto.CRYPTO_memcmp(digest, given.data(), kSha256Size) == 0 ? SignatureCheck::kOk
                                                                      : SignatureCheck::kMismatch;
}

std::string_view DescribeSignatureCheck(SignatureCheck check) {
  switch (check) {
    case SignatureCheck::kOk:
      return "the X-Hub-Signature-256 signature is valid";
    case SignatureCheck::kMissing:
      return "no X-Hub-Signature-256 header: set a secret on the webhook";
    case SignatureCheck::kSha1Only:
      return "only an X-Hub-Signature (SHA-1) header was sent: X-Hub-Signature-256 is required";
    case SignatureCheck::kMalformed:
      return "X-Hub-Signature-256 is not 'sha256=' followed by 64 lowercase hex digits";
    case SignatureCheck::kMismatch:
      return "X-Hub-Signature-256 does not match the body: check the webhook's secret";
  }
  return "unknown signature check";
}

Result<std::string> PayloadJson(std::string_view content_type, std::string_view raw_body) {
  std::string media_type = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  if (media_type == "application/json") return std::string(raw_body);
  if (media_type != "application/x-www-form-urlencoded") {
    return Fail(
        fmt::format("webhook Content-Type '{}' is neither application/json nor "
                    "application/x-www-form-urlencoded",
                    content_type));
  }
  std::size_t start = 0;
  while (start <= raw_body.size()) {
    std::size_t end = std::min(raw_body.find('&', start), raw_body.size());
    std::string_view field = raw_body.substr(start, end - start);
    std::size_t equals = std::min(field.find('='), field.size());
    Result<std::string> name = FormDecode(field.substr(0, equals), start);
    if (!name) return name;
    if (*name == "payload") {
      std::string_view value = equals < field.size() ? field.substr(equals + 1) : "";
      return FormDecode(value, start + equals + 1);
    }
    start = end + 1;
  }
  return Fail("form-encoded webhook body has no 'payload' field");
}

bool IsZeroCommit(std::string_view sha) {
  return !sha.empty() && sha.find_first_not_of('0') == std::string_view::npos;
}

Result<std::string> DeliveryRepository(std::string_view json) {
  return ScanDelivery(json, "delivery");
}

Result<PushEvent> ParsePushEvent(std::string_view text) {
  // The scan bounds the nesting before nlohmann builds the document.
  if (Result<std::string> scanned = ScanDelivery(text, "push payload"); !scanned) {
    return Fail(scanned.error());
  }
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return Fail("push payload: not valid JSON");

  std::string error;
  Fields payload(document, "", error);
  PushEvent event;
  Fields repository = payload.Object("repository");
  event.repository = repository.String("full_name");
  if (error.empty() && event.repository.empty()) {
    repository.Report("'repository.full_name' is empty");
  }
  event.clone_url = repository.String("clone_url");
  event.default_branch = repository.OptionalString("default_branch");
  event.ref = payload.String("ref");
  for (std::string_view prefix : {"refs/heads/", "refs/tags/"}) {
    if (event.ref.starts_with(prefix) && event.ref.size() > prefix.size()) {
      event.name = event.ref.substr(prefix.size());
      event.tag = prefix == "refs/tags/";
    }
  }
  if (event.name.empty()) {
    payload.Report(
        fmt::format("'ref' must be refs/heads/NAME or refs/tags/NAME, not '{}'", event.ref));
  }
  event.before = payload.CommitId("before");
  event.after = payload.CommitId("after");
  event.created = payload.Bool("created");
  event.deleted = payload.Bool("deleted");
  if (payload.Find("head_commit") != nullptr) {
    event.head_message = payload.Object("head_commit").OptionalString("message");
  }
  event.pusher = payload.Object("pusher").String("name");
  if (!error.empty()) return Fail(error);
  return event;
}

}  // namespace runner::serve
