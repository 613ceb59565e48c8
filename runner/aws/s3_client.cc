#include "runner/aws/s3_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "runner/aws/sigv4.h"
#include "runner/sha256.h"

namespace runner::aws {

namespace {

using std::chrono::milliseconds;

bool IsDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The host without its port: "127.0.0.1", "[::1]", "localhost".
std::string_view HostName(std::string_view host) {
  if (host.starts_with('[')) return host.substr(0, host.find(']') + 1);
  return host.substr(0, host.rfind(':'));
}

bool IsIpOrLocalhost(std::string_view host) {
  std::string_view name = HostName(host);
  if (name.starts_with('[')) return true;
  if (name == "localhost" || name.ends_with(".localhost")) return true;
  int parts = 0;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view part = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!IsDigits(part) || part.size() > 3) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

// A bucket that can be the first label of a host name (virtual-host style over TLS).
bool IsDnsCompatibleBucket(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  return std::all_of(bucket.begin(), bucket.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// S3's bucket naming rules, loosely: what an S3-compatible store also accepts.
bool IsValidBucket(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  return std::all_of(bucket.begin(), bucket.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

bool IsRetryable(int status, std::string_view code) {
  static constexpr std::array<std::string_view, 12> kCodes = {
      "SlowDown",
      "Throttling",
      "ThrottlingException",
      "RequestLimitExceeded",
      "RequestThrottled",
      "InternalError",
      "ServiceUnavailable",
      "RequestTimeout",
      "BadDigest",
      "IncompleteBody",
      "TooManyRequestsException",
      "ProvisionedThroughputExceededException"};
  if (status >= 500 || status == 429) return true;
  return std::find(kCodes.begin(), kCodes.end(), code) != kCodes.end();
}

std::string ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

void Digest(const EVP_MD* type, std::string_view data, unsigned char* out, unsigned int* size) {
  EVP_Digest(data.data(), data.size(), out, size, type, nullptr);
}

std::string Base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string QueryString(const Pairs& query) {
  std::string out;
  for (const auto& [name, value] : query) {
    out += out.empty() ? '?' : '&';
    out += UriEncode(name, false);
    if (!value.empty()) {
      out += '=';
      out += UriEncode(value, false);
    }
  }
  return out;
}

std::string Seconds(milliseconds delay) {
  return fmt::format("{:.1f}s", static_cast<double>(delay.count()) / 1000.0);
}

std::string ErrnoText() { return std::strerror(errno); }

// A read-only mapping of a whole file: large bodies are sent from the page cache, never
// copied into the heap.
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  Status Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(fmt::format("cannot open '{}': {}", path, ErrnoText()));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Fail(fmt::format("'{}' is not a regular file", path));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        std::string error = ErrnoText();
        ::close(fd);
        return Fail(fmt::format("cannot map '{}': {}", path, error));
      }
      data_ = data;
      ::madvise(data_, size_, MADV_SEQUENTIAL);
    }
    ::close(fd);
    return {};
  }

  std::string_view view() const {
    return data_ == nullptr ? std::string_view()
                            : std::string_view(static_cast<char*>(data_), size_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then "-" and the count.
std::string MultipartEtag(const std::vector<std::string>& part_etags) {
  std::string digests;
  for (const std::string& etag : part_etags) {
    std::string hex = etag;
    std::erase(hex, '"');
    if (hex.size() != 32) return {};
    for (size_t i = 0; i < 32; i += 2) {
      unsigned value = 0;
      auto [end, error] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
      // An ETag that is not an MD5 (not every S3-compatible store makes one) has no such sum.
      if (error != std::errc() || end != hex.data() + i + 2) return {};
      digests += static_cast<char>(value);
    }
  }
  return fmt::format("\"{}-{}\"", Md5Hex(digests), part_etags.size());
}

// "Sun, 22 Nov 2026 00:01:02 GMT".
std::optional<std::chrono::system_clock::time_point> ParseHttpDate(const std::string& text) {
  struct tm parts = {};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(::timegm(&parts));
}

}  // namespace

struct S3Client::Request {
  std::string method;
  std::string bucket;
  std::string key;
  Pairs query;
  Pairs headers;  // besides host, content-md5 and the signature's
  std::string_view body;
  // Names the request in messages: "PUT s3://bucket/key part 3/8".
  std::string what;
  // Abort must go out even when the upload is being cancelled.
  bool cancellable = true;
  int max_attempts = 0;  // 0: options_.retry.max_attempts
  // CompleteMultipartUpload may answer 200 with an <Error> body.
  bool error_in_body = false;
  // The body's hex SHA-256 when the caller has it already.
  std::string payload_sha256;
  // When set, receives the number of attempts made.
  int* attempts_made = nullptr;
};

Result<S3Url> ParseS3Url(std::string_view url) {
  if (!url.starts_with("s3://")) {
    return Fail(fmt::format("'{}' is not an s3:// URL", url));
  }
  std::string_view rest = url.substr(5);
  size_t slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.key = std::string(rest.substr(slash + 1));
  if (out.bucket.empty()) return Fail(fmt::format("'{}' names no bucket (s3://BUCKET/...)", url));
  if (!IsValidBucket(out.bucket)) {
    return Fail(
        fmt::format("'{}': '{}' is not a valid bucket name (3 to 63 letters, digits, '-', '.')",
                    url, out.bucket));
  }
  return out;
}

std::string ResolveS3Endpoint(std::string_view configured, const Environment& env) {
  if (!configured.empty()) return std::string(configured);
  for (std::string_view name : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
    if (auto value = Lookup(env, name); value && !value->empty()) return *value;
  }
  return {};
}

std::string S3UrlOf(std::string_view bucket, std::string_view key) {
  return fmt::format("s3://{}/{}", bucket, key);
}

std::string Md5Base64(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Digest(EVP_md5(), data, digest, &size);
  return Base64(digest, size);
}

std::string Md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Digest(EVP_md5(), data, digest, &size);
  std::string out;
  for (unsigned int i = 0; i < size; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

std::string XmlElementText(std::string_view xml, std::string_view name) {
  std::string open = fmt::format("<{}>", name);
  std::string close = fmt::format("</{}>", name);
  size_t begin = xml.find(open);
  if (begin == std::string_view::npos) return {};
  begin += open.size();
  size_t end = xml.find(close, begin);
  if (end == std::string_view::npos) return {};
  std::string_view text = xml.substr(begin, end - begin);
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out += text[i];
      continue;
    }
    std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp") {
      out += '&';
    } else if (entity == "lt") {
      out += '<';
    } else if (entity == "gt") {
      out += '>';
    } else if (entity == "quot") {
      out += '"';
    } else if (entity == "apos") {
      out += '\'';
    } else if (entity.starts_with('#')) {
      unsigned long code = entity.starts_with("#x")
                               ? std::strtoul(std::string(entity.substr(2)).c_str(), nullptr, 16)
                               : std::strtoul(std::string(entity.substr(1)).c_str(), nullptr, 10);
      if (code < 0x80) {
        out += static_cast<char>(code);
      } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
      } else if (code < 0x10000) {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (code >> 18));
        out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
      }
    } else {
      out += text.substr(i, semi - i + 1);
    }
    i = semi;
  }
  return out;
}

Result<std::unique_ptr<S3Client>> S3Client::Create(HttpClient& http,
                                                   CredentialsProvider& credentials,
                                                   S3ClientOptions options) {
  if (options.region.empty()) return Fail("S3: no region");
  Endpoint endpoint;
  if (options.endpoint.empty()) {
    std::string suffix = options.region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
    endpoint = {"https", fmt::format("s3.{}.{}", options.region, suffix)};
  } else {
    std::string_view url = options.endpoint;
    size_t scheme_end = url.find("://");
    std::string_view scheme = scheme_end == std::string_view::npos ? "" : url.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https") {
      return Fail(fmt::format("S3 endpoint '{}' must start with http:// or https://", url));
    }
    std::string_view rest = url.substr(scheme_end + 3);
    size_t slash = rest.find('/');
    std::string_view host = rest.substr(0, slash);
    if (slash != std::string_view::npos && rest.substr(slash) != "/") {
      return Fail(
          fmt::format("S3 endpoint '{}' must not have a path (give scheme://host[:port])", url));
    }
    if (host.empty() || host.find_first_of("@?#") != std::string_view::npos) {
      return Fail(fmt::format("S3 endpoint '{}' must be scheme://host[:port]", url));
    }
    endpoint = {std::string(scheme), std::string(host)};
  }
  if (!options.sse.empty() && options.sse != "AES256" && options.sse != "aws:kms") {
    return Fail(fmt::format("S3: unknown sse '{}': use AES256 or aws:kms", options.sse));
  }
  if (!options.kms_key_id.empty() && options.sse != "aws:kms") {
    return Fail("S3: kms_key_id needs sse: aws:kms");
  }
  if (options.part_size == 0 || options.part_size > kMaxPartSize) {
    return Fail("S3: part_size must be between 1 byte and 5 GiB");
  }
  if (options.concurrency < 1) return Fail("S3: concurrency must be at least 1");
  if (options.retry.max_attempts < 1) options.retry.max_attempts = 1;
  return std::unique_ptr<S3Client>(
      new S3Client(http, credentials, std::move(options), std::move(endpoint)));
}

S3Client::S3Client(HttpClient& http, CredentialsProvider& credentials, S3ClientOptions options,
                   Endpoint endpoint)
    : http_(http),
      credentials_(credentials),
      options_(std::move(options)),
      endpoint_(std::move(endpoint)) {}

bool S3Client::UsePathStyle(const std::string& bucket) const {
  switch (options_.path_style) {
    case PathStyle::kPath:
      return true;
    case PathStyle::kVirtualHost:
      return false;
    case PathStyle::kAuto:
      break;
  }
  return IsIpOrLocalhost(endpoint_.host) || !IsDnsCompatibleBucket(bucket);
}

std::string S3Client::ObjectUrl(const std::string& bucket, const std::string& key) const {
  std::string encoded = UriEncode(key, true);
  if (UsePathStyle(bucket)) {
    return fmt::format("{}://{}/{}/{}", endpoint_.scheme, endpoint_.host, bucket, encoded);
  }
  return fmt::format("{}://{}.{}/{}", endpoint_.scheme, bucket, endpoint_.host, encoded);
}

void S3Client::Log(std::string_view line) const {
  if (options_.log) options_.log(line);
}

void S3Client::Sleep(milliseconds delay) const {
  if (options_.sleep) {
    options_.sleep(delay);
    return;
  }
  // In slices, so that a cancelled build does not wait out a long backoff.
  auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until && !Cancelled()) {
    auto left = std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::min(left, milliseconds(50)));
  }
}

Result<HttpResponse> S3Client::Execute(const Request& request) {
  // Digests once per request, not per attempt: the body does not change.
  const std::string payload_sha256 =
      request.payload_sha256.empty() ? Sha256Hex(request.body) : request.payload_sha256;
  const std::string content_md5 = Md5Base64(request.body);
  const bool path_style = UsePathStyle(request.bucket);
  const std::string encoded_key = UriEncode(request.key, true);
  const std::string host = path_style ? endpoint_.host : request.bucket + "." + endpoint_.host;
  const std::string path =
      path_style ? fmt::format("/{}/{}", request.bucket, encoded_key) : "/" + encoded_key;
  const std::string url =
      fmt::format("{}://{}{}{}", endpoint_.scheme, host, path, QueryString(request.query));
  const int max_attempts =
      request.max_attempts > 0 ? request.max_attempts : options_.retry.max_attempts;
  // Large bodies get time to travel; a stall is caught by stall_timeout long before.
  const milliseconds timeout =
      std::chrono::seconds(120) + milliseconds(request.body.size() / 128 / 1024 * 1000);

  thread_local std::mt19937_64 random{std::random_device{}()};
  for (int attempt = 1;; ++attempt) {
    if (request.attempts_made != nullptr) *request.attempts_made = attempt;
    if (request.cancellable && Cancelled()) {
      return Fail(fmt::format("cancelled ({})", request.what));
    }
    Result<Credentials> credentials = credentials_.Get();
    if (!credentials) return Fail(fmt::format("{} ({})", credentials.error(), request.what));

    SignableRequest signable;
    signable.method = request.method;
    signable.path = path;
    signable.query = request.query;
    signable.headers = {{"host", host}, {"content-md5", content_md5}};
    for (const auto& header : request.headers) signable.headers.push_back(header);
    signable.payload_sha256 = payload_sha256;
    SigningParams params;
    params.region = options_.region;
    params.service = "s3";
    params.time = options_.now ? options_.now() : std::chrono::system_clock::now();
    params.s3_rules = true;

    HttpRequest http;
    http.method = request.method;
    http.url = url;
    http.headers = signable.headers;
    for (auto& header : SignHeaders(signable, *credentials, params)) {
      http.headers.push_back(std::move(header));
    }
    http.body = request.body;
    http.timeout = timeout;
    http.connect_timeout = options_.connect_timeout;
    http.stall_timeout = options_.stall_timeout;
    if (request.cancellable && options_.cancelled) http.cancelled = options_.cancelled;

    Result<HttpResponse> response = http_.Send(http);
    std::string error;
    bool retryable = true;
    if (!response) {
      if (request.cancellable && Cancelled()) {
        return Fail(fmt::format("cancelled ({})", request.what));
      }
      error = response.error();
    } else {
      bool ok = response->status >= 200 && response->status < 300;
      if (ok && !(request.error_in_body && response->body.find("<Error>") != std::string::npos)) {
        return response;
      }
      std::string code = XmlElementText(response->body, "Code");
      std::string message = XmlElementText(response->body, "Message");
      retryable = IsRetryable(response->status, code);
      if (!code.empty()) {
        error = message.empty() ? code : fmt::format("{}: {}", code, message);
      } else {
        error = fmt::format("HTTP {} {}", response->status, ReasonPhrase(response->status));
        while (error.ends_with(' ')) error.pop_back();
      }
      if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId") {
        // The source helps; the key id and the secret never appear.
        error += fmt::format(" [credentials from {}]", credentials->source);
      }
    }
    if (!retryable || attempt >= max_attempts) {
      std::string tries = attempt > 1 ? fmt::format(", after {} attempts", attempt) : "";
      return Fail(fmt::format("{} ({}{})", error, request.what, tries));
    }
    uint64_t cap_ms = static_cast<uint64_t>(options_.retry.base_delay.count())
                      << std::min(attempt - 1, 20);
    cap_ms = std::min<uint64_t>(cap_ms, static_cast<uint64_t>(options_.retry.max_delay.count()));
    milliseconds delay(cap_ms == 0 ? 0 : random() % cap_ms);
    Log(fmt::format("{}: {}; retrying in {} (attempt {} of {})", request.what, error,
                    Seconds(delay), attempt + 1, max_attempts));
    Sleep(delay);
  }
}

Result<S3Object> S3Client::PutObject(const std::string& bucket, const std::string& key,
                                     std::string_view body, std::string_view content_type) {
  Request request;
  request.method = "PUT";
  request.bucket = bucket;
  request.key = key;
  request.body = body;
  request.what = fmt::format("PUT {}", S3UrlOf(bucket, key));
  request.payload_sha256 = Sha256Hex(body);
  if (!content_type.empty()) request.headers.emplace_back("content-type", content_type);
  if (!options_.sse.empty()) {
    request.headers.emplace_back("x-amz-server-side-encryption", options_.sse);
    if (!options_.kms_key_id.empty()) {
      request.headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id",
                                   options_.kms_key_id);
    }
  }
  Result<HttpResponse> response = Execute(request);
  if (!response) return Fail(response.error());
  S3Object object;
  object.bucket = bucket;
  object.key = key;
  object.size = body.size();
  object.sha256 = request.payload_sha256;
  object.etag = response->Header("etag");
  return object;
}

void S3Client::Abort(const std::string& bucket, const std::string& key,
                     const std::string& upload_id) {
  Request request;
  request.method = "DELETE";
  request.bucket = bucket;
  request.key = key;
  request.query = {{"uploadId", upload_id}};
  request.what = fmt::format("AbortMultipartUpload {}", S3UrlOf(bucket, key));
  request.cancellable = false;
  request.max_attempts = 3;
  Result<HttpResponse> response = Execute(request);
  if (response) {
    Log(fmt::format("aborted the multipart upload of {}", S3UrlOf(bucket, key)));
  } else {
    Log(
        fmt::format("could not abort the multipart upload of {}: {}; its parts stay stored (and "
                    "billed) until a lifecycle rule removes incomplete uploads",
                    S3UrlOf(bucket, key), response.error()));
  }
}

Result<S3Object> S3Client::MultipartUpload(const std::string& bucket, const std::string& key,
                                           std::string_view body, std::string_view content_type) {
  const std::string where = S3UrlOf(bucket, key);
  std::uint64_t part_size = options_.part_size;
  if ((body.size() + part_size - 1) / part_size > kMaxParts) {
    // Round the raised size up to whole MiB, as the AWS CLI does.
    part_size = ((body.size() + kMaxParts - 1) / kMaxParts + kMiB - 1) / kMiB * kMiB;
  }
  const size_t part_count =
      std::max<size_t>(1, static_cast<size_t>((body.size() + part_size - 1) / part_size));

  Request create;
  create.method = "POST";
  create.bucket = bucket;
  create.key = key;
  create.query = {{"uploads", ""}};
  create.what = fmt::format("CreateMultipartUpload {}", where);
  if (!content_type.empty()) create.headers.emplace_back("content-type", content_type);
  if (!options_.sse.empty()) {
    create.headers.emplace_back("x-amz-server-side-encryption", options_.sse);
    if (!options_.kms_key_id.empty()) {
      create.headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id",
                                  options_.kms_key_id);
    }
  }
  // Whole seconds, as Last-Modified has them.
  const auto created_at =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  Result<HttpResponse> created = Execute(create);
  if (!created) return Fail(created.error());
  const std::string upload_id = XmlElementText(created->body, "UploadId");
  if (upload_id.empty()) {
    return Fail(fmt::format("CreateMultipartUpload {}: the answer holds no UploadId", where));
  }
  Log(fmt::format("multipart upload of {}: {} parts of {} bytes", where, part_count, part_size));

  std::vector<std::string> etags(part_count);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  auto send_parts = [&] {
    while (!failed.load()) {
      size_t index = next.fetch_add(1);
      if (index >= part_count) return;
      Request part;
      part.method = "PUT";
      part.bucket = bucket;
      part.key = key;
      part.query = {{"partNumber", std::to_string(index + 1)}, {"uploadId", upload_id}};
      part.body = body.substr(std::min<size_t>(body.size(), index * part_size), part_size);
      part.what = fmt::format("PUT {} part {} of {}", where, index + 1, part_count);
      Result<HttpResponse> response = Execute(part);
      std::string error;
      if (!response) {
        error = response.error();
      } else if (etags[index] = response->Header("etag"); etags[index].empty()) {
        error = fmt::format("{}: the answer has no ETag", part.what);
      }
      if (!error.empty()) {
        std::lock_guard lock(error_mutex);
        if (first_error.empty()) first_error = error;
        failed = true;
        return;
      }
    }
  };
  std::vector<std::jthread> workers;
  const size_t worker_count =
      std::min<size_t>(part_count, static_cast<size_t>(options_.concurrency));
  for (size_t i = 0; i < worker_count; ++i) workers.emplace_back(send_parts);
  // This thread hashes the whole object for the manifest while the parts travel.
  Sha256 whole;
  constexpr size_t kChunk = 4 * kMiB;
  for (size_t offset = 0; offset < body.size() && !failed.load() && !Cancelled();
       offset += kChunk) {
    whole.Update(body.substr(offset, kChunk));
  }
  workers.clear();  // joins
  if (!failed.load() && Cancelled()) {
    failed = true;
    first_error = fmt::format("cancelled (multipart upload of {})", where);
  }
  if (failed.load()) {
    Abort(bucket, key, upload_id);
    return Fail(first_error);
  }

  std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (size_t i = 0; i < part_count; ++i) {
    std::string etag;
    for (char c : etags[i]) etag += c == '"' ? std::string("&quot;") : std::string(1, c);
    xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etag);
  }
  xml += "</CompleteMultipartUpload>";
  Request complete;
  complete.method = "POST";
  complete.bucket = bucket;
  complete.key = key;
  complete.query = {{"uploadId", upload_id}};
  complete.headers = {{"content-type", "application/xml"}};
  complete.body = xml;
  complete.what = fmt::format("CompleteMultipartUpload {}", where);
  complete.error_in_body = true;
  int complete_attempts = 0;
  complete.attempts_made = &complete_attempts;
  Result<HttpResponse> completed = Execute(complete);
  S3Object object;
  object.bucket = bucket;
  object.key = key;
  object.size = body.size();
  object.sha256 = whole.FinishHex();
  object.parts = static_cast<int>(part_count);
  if (!completed && complete_attempts > 1) {
    // An earlier attempt may have completed the upload and lost its answer: S3 then answers
    // the retry NoSuchUpload (s3rver: InternalError). The object is ours when HEAD shows S3's
    // multipart ETag of our parts, or, for stores with another ETag scheme, our size written
    // after the upload was created.
    Request head;
    head.method = "HEAD";
    head.bucket = bucket;
    head.key = key;
    head.what = fmt::format("HEAD {}", where);
    head.cancellable = false;
    head.max_attempts = 3;
    Result<HttpResponse> found = Execute(head);
    if (found && found->Header("content-length") == std::to_string(body.size())) {
      std::string etag = found->Header("etag");
      std::optional<std::chrono::system_clock::time_point> modified =
          ParseHttpDate(found->Header("last-modified"));
      if (etag == MultipartEtag(etags) || (modified && *modified >= created_at)) {
        Log(fmt::format("{}: completed by an earlier attempt whose answer was lost",
                        complete.what));
        object.etag = etag;
        return object;
      }
    }
  }
  if (!completed) {
    Abort(bucket, key, upload_id);
    return Fail(completed.error());
  }
  object.etag = XmlElementText(completed->body, "ETag");
  if (object.etag.empty()) object.etag = completed->Header("etag");
  return object;
}

Result<S3Object> S3Client::UploadFile(const std::string& bucket, const std::string& key,
                                      const std::string& path, std::string_view content_type) {
  MappedFile file;
  if (Status opened = file.Open(path); !opened) return Fail(opened.error());
  std::string_view body = file.view();
  if (body.size() > options_.part_size) return MultipartUpload(bucket, key, body, content_type);
  return PutObject(bucket, key, body, content_type);
}

}  // namespace runner::aws
