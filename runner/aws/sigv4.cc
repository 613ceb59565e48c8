#include "runner/aws/sigv4.h"

#include <algorithm>
#include <ctime>

#include "runner/crypto.h"
#include "runner/hex.h"
#include "runner/sha256.h"

namespace runner::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trimmed, with every run of whitespace inside turned into one space. Runs of newlines count:
// a folded (multi-line) header value is signed as its lines joined by single spaces.
std::string TrimAll(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  const CryptoLibrary& crypto = Crypto();
  crypto.HMAC(crypto.EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

struct Stamp {
  std::string date;       // 20150830
  std::string date_time;  // 20150830T123600Z
};

Stamp MakeStamp(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &utc);
  Stamp stamp;
  stamp.date_time = buffer;
  stamp.date = stamp.date_time.substr(0, 8);
  return stamp;
}

std::string Scope(const Stamp& stamp, const SigningParams& params) {
  return stamp.date + "/" + params.region + "/" + params.service + "/aws4_request";
}

// RFC 3986 dot-segment removal plus collapsing of empty segments, as the SDKs normalize for
// every service but S3. A path ending in a segment (or in `.`/`..`) keeps or gains its
// trailing slash the way RFC 3986 would resolve it.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(pos, end - pos);
    bool last = end == path.size();
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else if (segment == ".") {
      trailing_slash = last;
    } else if (segment.empty()) {
      trailing_slash = last;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    pos = end + 1;
  }
  std::string out;
  for (std::string_view segment : segments) {
    out += '/';
    out += segment;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

std::string CanonicalUri(const SignableRequest& request, const SigningParams& params) {
  std::string_view path = request.path.empty() ? std::string_view("/") : request.path;
  if (params.s3_rules) return std::string(path);
  // Outside S3 the path sent (already encoded once) is encoded again.
  if (params.normalize_path) return UriEncode(NormalizePath(path), /*keep_slash=*/true);
  return UriEncode(path, /*keep_slash=*/true);
}

std::string CanonicalQuery(const Pairs& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

bool HasHeader(const Pairs& headers, std::string_view lower_name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& header) { return Lower(header.first) == lower_name; });
}

// Every header name of the request, lowercased, sorted, unique, joined by ';'. Authorization
// is never signed (it holds the signature).
std::string SignedHeadersList(const Pairs& headers) {
  std::vector<std::string> names;
  for (const auto& header : headers) {
    std::string name = Lower(header.first);
    if (name != "authorization") names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ';';
    out += name;
  }
  return out;
}

std::string PayloadHash(const SignableRequest& request) {
  return request.payload_sha256.empty() ? Sha256Hex("") : request.payload_sha256;
}

}  // namespace

std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += c;
    } else {
      out += '%';
      out += kDigits[byte >> 4];
      out += kDigits[byte & 0xf];
    }
  }
  return out;
}

std::string CanonicalRequest(const SignableRequest& request, const SigningParams& params,
                             std::string_view signed_headers_list) {
  // Values of each signed header in request order (duplicates joined by ','), names sorted.
  std::vector<std::string> names;
  for (size_t pos = 0; pos <= signed_headers_list.size();) {
    size_t end = signed_headers_list.find(';', pos);
    if (end == std::string_view::npos) end = signed_headers_list.size();
    if (end > pos) names.emplace_back(signed_headers_list.substr(pos, end - pos));
    pos = end + 1;
  }
  std::string headers;
  for (const std::string& name : names) {
    std::string joined;
    bool first = true;
    for (const auto& [key, value] : request.headers) {
      if (Lower(key) != name) continue;
      if (!first) joined += ',';
      joined += TrimAll(value);
      first = false;
    }
    headers += name + ":" + joined + "\n";
  }

  std::string out;
  out += request.method + "\n";
  out += CanonicalUri(request, params) + "\n";
  out += CanonicalQuery(request.query) + "\n";
  out += headers + "\n";
  out += std::string(signed_headers_list) + "\n";
  out += PayloadHash(request);
  return out;
}

std::string StringToSign(std::string_view canonical_request, const SigningParams& params) {
  Stamp stamp = MakeStamp(params.time);
  std::string out(kAlgorithm);
  out += "\n" + stamp.date_time + "\n" + Scope(stamp, params) + "\n";
  out += Sha256Hex(canonical_request);
  return out;
}

std::string Signature(std::string_view string_to_sign, const Credentials& credentials,
                      const SigningParams& params) {
  Stamp stamp = MakeStamp(params.time);
  // The signing key depends on the day, region and service only, so each thread keeps the
  // last one it derived (four HMACs, more than the signature itself) instead of a request each.
  struct Derived {
    std::string secret, date, region, service, key;
  };
  thread_local Derived last;
  if (last.key.empty() || last.secret != credentials.secret_access_key || last.date != stamp.date ||
      last.region != params.region || last.service != params.service) {
    std::string key = Hmac("AWS4" + credentials.secret_access_key, stamp.date);
    key = Hmac(key, params.region);
    key = Hmac(key, params.service);
    last = {credentials.secret_access_key, stamp.date, params.region, params.service,
            Hmac(key, "aws4_request")};
  }
  return HexEncode(Hmac(last.key, string_to_sign));
}

Pairs SignHeaders(const SignableRequest& request, const Credentials& credentials,
                  const SigningParams& params) {
  Stamp stamp = MakeStamp(params.time);
  Pairs added;
  if (!HasHeader(request.headers, "x-amz-date")) added.emplace_back("X-Amz-Date", stamp.date_time);
  if (!credentials.session_token.empty() && !HasHeader(request.headers, "x-amz-security-token")) {
    added.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  if (params.s3_rules && !HasHeader(request.headers, "x-amz-content-sha256")) {
    added.emplace_back("x-amz-content-sha256", PayloadHash(request));
  }

  SignableRequest signed_request = request;
  signed_request.headers.insert(signed_request.headers.end(), added.begin(), added.end());
  std::string signed_headers = SignedHeadersList(signed_request.headers);
  std::string canonical = CanonicalRequest(signed_request, params, signed_headers);
  std::string signature = Signature(StringToSign(canonical, params), credentials, params);

  std::string authorization(kAlgorithm);
  authorization += " Credential=" + credentials.access_key_id + "/" + Scope(stamp, params);
  authorization += ", SignedHeaders=" + signed_headers;
  authorization += ", Signature=" + signature;
  added.emplace_back("Authorization", std::move(authorization));
  return added;
}

Pairs PresignQuery(const SignableRequest& request, const Credentials& credentials,
                   const SigningParams& params, std::chrono::seconds expires) {
  Stamp stamp = MakeStamp(params.time);
  std::string signed_headers = SignedHeadersList(request.headers);
  Pairs added = {
      {"X-Amz-Algorithm", std::string(kAlgorithm)},
      {"X-Amz-Credential", credentials.access_key_id + "/" + Scope(stamp, params)},
      {"X-Amz-Date", stamp.date_time},
      {"X-Amz-Expires", std::to_string(expires.count())},
      {"X-Amz-SignedHeaders", signed_headers},
  };
  if (!credentials.session_token.empty()) {
    added.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }

  SignableRequest signed_request = request;
  signed_request.query.insert(signed_request.query.end(), added.begin(), added.end());
  // A presigned S3 URL is made before the body exists: its payload is unsigned unless the
  // caller says otherwise.
  if (params.s3_rules && signed_request.payload_sha256.empty()) {
    signed_request.payload_sha256 = std::string(kUnsignedPayload);
  }
  std::string canonical = CanonicalRequest(signed_request, params, signed_headers);
  added.emplace_back("X-Amz-Signature",
                     Signature(StringToSign(canonical, params), credentials, params));
  return added;
}

}  // namespace runner::aws
