#include "runner/aws/s3_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <future>
#include <mutex>
#include <optional>
#include <vector>

#include "runner/aws/sigv4.h"
#include "runner/crc32c.h"
#include "runner/crypto.h"
#include "runner/fs.h"
#include "runner/hex.h"
#include "runner/sha256.h"
#include "runner/worker_pool.h"
#include "runner/xml.h"

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

void Digest(const EVP_MD* type, std::string_view data, unsigned char* out, unsigned int* size) {
  Crypto().EVP_Digest(data.data(), data.size(), out, size, type, nullptr);
}

// A whole file's bytes. A large file is mapped read-only and sent from the page cache, never
// copied into the heap; a small one is read into memory, which costs less than a mapping (two
// system calls, a page fault, and an unmap that interrupts every CPU the upload threads ran on
// to flush their TLBs).
class FileBody {
 public:
  FileBody() = default;
  ~FileBody() {
    if (mapped_ != nullptr) ::munmap(mapped_, size_);
  }
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;

  Status Open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return Fail(fmt::format("cannot open '{}': {}", path, ErrnoText(errno)));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Fail(fmt::format("'{}' is not a regular file", path));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ <= kReadLimit) {
      // What it holds as it is read, at most what fstat said (the file may be growing).
      auto contents = ReadAll(fd.get(), size_, size_);
      if (!contents) return Fail(fmt::format("cannot read '{}': {}", path, contents.error()));
      read_ = std::move(*contents);
      size_ = read_.size();
      return {};
    }
    void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (data == MAP_FAILED) return Fail(fmt::format("cannot map '{}': {}", path, ErrnoText(errno)));
    mapped_ = data;
    ::madvise(mapped_, size_, MADV_SEQUENTIAL);
    return {};
  }

  std::string_view view() const {
    return mapped_ == nullptr ? std::string_view(read_)
                              : std::string_view(static_cast<char*>(mapped_), size_);
  }

 private:
  static constexpr size_t kReadLimit = 1024 * 1024;
  std::string read_;
  void* mapped_ = nullptr;
  size_t size_ = 0;
};

// The digests of a stretch of an object, made in one pass over pieces small enough to stay in
// cache between the two: the CRC32C S3 checks and the whole object's SHA-256 (`whole`,
// continued across parts); with `own_sha256`, also the stretch's own (the signed payload hash
// over http).
struct StretchDigest {
  std::uint32_t crc32c = 0;
  std::string sha256;
};

StretchDigest DigestStretch(std::string_view stretch, Sha256& whole, bool own_sha256) {
  constexpr size_t kPiece = 256 * 1024;
  StretchDigest digest;
  std::optional<Sha256> own;
  if (own_sha256) own.emplace();
  for (size_t offset = 0; offset < stretch.size(); offset += kPiece) {
    std::string_view piece = stretch.substr(offset, kPiece);
    // SHA-256 first: at about 1.4 GB/s it hides the fetch of the piece from memory, which the
    // CRC32C, several times faster, would wait for (1.86 -> 1.76 s per GiB in all).
    whole.Update(piece);
    if (own) own->Update(piece);
    digest.crc32c = Crc32c(piece, digest.crc32c);
  }
  if (own) digest.sha256 = own->FinishHex();
  return digest;
}

// S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then "-" and the count.
std::string MultipartEtag(const std::vector<std::string>& part_etags) {
  std::string digests;
  for (const std::string& etag : part_etags) {
    std::string hex = etag;
    std::erase(hex, '"');
    std::optional<std::string> digest = HexDecode(hex);
    // An ETag that is not an MD5 (not every S3-compatible store makes one) has no such sum.
    if (!digest || digest->size() != 16) return {};
    digests += *digest;
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
  return EndpointFromEnvironment(env, "S3");
}

std::string S3UrlOf(std::string_view bucket, std::string_view key) {
  return fmt::format("s3://{}/{}", bucket, key);
}

std::string Md5Base64(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Digest(Crypto().EVP_md5(), data, digest, &size);
  return Base64(std::string_view(reinterpret_cast<const char*>(digest), size));
}

std::string Md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Digest(Crypto().EVP_md5(), data, digest, &size);
  return HexEncode(digest, size);
}

Result<std::unique_ptr<S3Client>> S3Client::Create(HttpClient& http,
                                                   CredentialsProvider& credentials,
                                                   S3ClientOptions options) {
  AwsClientOptions aws;
  static_cast<AwsTransportOptions&>(aws) = options;
  aws.service = "s3";
  aws.region = options.region;
  aws.endpoint = options.endpoint;
  aws.s3_rules = true;
  auto client = AwsClient::Create(http, credentials, std::move(aws));
  if (!client) return Fail("S3: " + client.error());
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
  return std::unique_ptr<S3Client>(new S3Client(std::move(options), std::move(*client)));
}

S3Client::S3Client(S3ClientOptions options, std::unique_ptr<AwsClient> aws)
    : options_(std::move(options)), aws_(std::move(aws)) {}

bool S3Client::UsePathStyle(const std::string& bucket) const {
  switch (options_.path_style) {
    case PathStyle::kPath:
      return true;
    case PathStyle::kVirtualHost:
      return false;
    case PathStyle::kAuto:
      break;
  }
  return IsIpOrLocalhost(aws_->endpoint().host) || !IsDnsCompatibleBucket(bucket);
}

std::string S3Client::ObjectUrl(const std::string& bucket, const std::string& key) const {
  std::string encoded = UriEncode(key, true);
  const Endpoint& endpoint = aws_->endpoint();
  if (UsePathStyle(bucket)) {
    return fmt::format("{}://{}/{}/{}", endpoint.scheme, endpoint.host, bucket, encoded);
  }
  return fmt::format("{}://{}.{}/{}", endpoint.scheme, bucket, endpoint.host, encoded);
}

AwsRequest S3Client::ObjectRequest(std::string method, const std::string& bucket,
                                   const std::string& key) const {
  AwsRequest request;
  request.method = std::move(method);
  const std::string encoded_key = UriEncode(key, true);
  if (UsePathStyle(bucket)) {
    request.path = fmt::format("/{}/{}", bucket, encoded_key);
  } else {
    request.host = bucket + "." + aws_->endpoint().host;
    request.path = "/" + encoded_key;
  }
  return request;
}

void S3Client::AddEncryptionHeaders(Pairs& headers) const {
  if (options_.sse.empty()) return;
  headers.emplace_back("x-amz-server-side-encryption", options_.sse);
  if (!options_.kms_key_id.empty()) {
    headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", options_.kms_key_id);
  }
}

// Over TLS the body is protected in transit and S3 checks it against the CRC32C, which the
// signature covers: hashing it for the signature as well would only cost CPU. Over plain http
// the CRC32C could be forged along with the body, so the payload stays signed.
bool S3Client::SignsPayload() const { return aws_->endpoint().scheme != "https"; }

std::string S3Client::AddPayloadChecksum(AwsRequest& request, std::uint32_t crc32c,
                                         const std::string& sha256) const {
  std::string checksum = Crc32cBase64(crc32c);
  request.headers.emplace_back("x-amz-checksum-crc32c", checksum);
  request.payload_sha256 = SignsPayload() ? sha256 : std::string(kUnsignedPayload);
  return checksum;
}

Result<std::optional<S3Object>> S3Client::Put(const std::string& bucket, const std::string& key,
                                              std::string_view body, std::string_view content_type,
                                              bool if_absent) {
  AwsRequest request = ObjectRequest("PUT", bucket, key);
  request.body_view = body;
  request.what = fmt::format("PUT {}", S3UrlOf(bucket, key));
  if (!content_type.empty()) request.headers.emplace_back("content-type", content_type);
  if (if_absent) request.headers.emplace_back("if-none-match", "*");
  AddEncryptionHeaders(request.headers);
  // The manifest's digest; over http it is also the signed payload hash.
  Sha256 whole;
  const std::uint32_t crc32c = DigestStretch(body, whole, false).crc32c;
  const std::string sha256 = whole.FinishHex();
  AddPayloadChecksum(request, crc32c, sha256);
  AwsResult<HttpResponse> response = aws_->Send(request);
  if (!response) {
    if (if_absent && response.error().status == 412) return std::nullopt;
    return Fail(response.error().text);
  }
  S3Object object;
  object.bucket = bucket;
  object.key = key;
  object.size = body.size();
  object.sha256 = sha256;
  object.etag = response->Header("etag");
  object.version_id = response->Header("x-amz-version-id");
  return object;
}

Result<S3Object> S3Client::PutObject(const std::string& bucket, const std::string& key,
                                     std::string_view body, std::string_view content_type) {
  auto object = Put(bucket, key, body, content_type, false);
  if (!object) return Fail(object.error());
  return std::move(**object);
}

Result<std::optional<S3Object>> S3Client::PutObjectIfAbsent(const std::string& bucket,
                                                            const std::string& key,
                                                            std::string_view body,
                                                            std::string_view content_type) {
  return Put(bucket, key, body, content_type, true);
}

AwsResult<HttpResponse> S3Client::SendGetObject(const std::string& bucket, const std::string& key) {
  AwsRequest request = ObjectRequest("GET", bucket, key);
  request.what = fmt::format("GET {}", S3UrlOf(bucket, key));
  return aws_->Send(request);
}

Result<std::string> S3Client::GetObject(const std::string& bucket, const std::string& key) {
  AwsResult<HttpResponse> response = SendGetObject(bucket, key);
  if (!response) return Fail(response.error().text);
  return std::move(response->body);
}

Result<std::optional<std::string>> S3Client::FindObject(const std::string& bucket,
                                                        const std::string& key) {
  AwsResult<HttpResponse> response = SendGetObject(bucket, key);
  if (!response) {
    if (response.error().status == 404) return std::nullopt;
    return Fail(response.error().text);
  }
  return std::move(response->body);
}

Result<std::optional<S3ObjectInfo>> S3Client::HeadObject(const std::string& bucket,
                                                         const std::string& key) {
  AwsRequest request = ObjectRequest("HEAD", bucket, key);
  request.what = fmt::format("HEAD {}", S3UrlOf(bucket, key));
  AwsResult<HttpResponse> response = aws_->Send(request);
  if (!response) {
    if (response.error().status == 404) return std::nullopt;
    return Fail(response.error().text);
  }
  S3ObjectInfo info;
  std::string length = response->Header("content-length");
  auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), info.size);
  if (error != std::errc() || end != length.data() + length.size() || length.empty()) {
    return Fail(fmt::format("{}: the answer has no valid Content-Length", request.what));
  }
  info.etag = response->Header("etag");
  return info;
}

Result<std::vector<std::string>> S3Client::ListObjects(const std::string& bucket,
                                                       const std::string& prefix, int max_keys) {
  const std::string where = S3UrlOf(bucket, prefix);
  if (max_keys < 1 || max_keys > kMaxListKeys) {
    return Fail(fmt::format("ListObjectsV2 {}: max-keys {} is not between 1 and {}", where,
                            max_keys, kMaxListKeys));
  }
  std::vector<std::string> keys;
  std::string token;
  for (int page = 1;; ++page) {
    // The bucket itself: `/bucket` path-style, `/` on the bucket's host.
    AwsRequest request = ObjectRequest("GET", bucket, "");
    if (request.path.size() > 1) request.path.pop_back();
    request.query = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
    if (!prefix.empty()) request.query.emplace_back("prefix", prefix);
    if (!token.empty()) request.query.emplace_back("continuation-token", token);
    request.what = fmt::format("ListObjectsV2 {} page {}", where, page);
    AwsResult<HttpResponse> response = aws_->Send(request);
    if (!response) return Fail(response.error().text);
    auto answer = xml::Document::Parse(response->body);
    if (!answer || answer->Root().Name() != "ListBucketResult") {
      return Fail(fmt::format("{}: the answer is not a ListBucketResult{}", request.what,
                              answer ? "" : ": " + answer.error()));
    }
    xml::Element result = answer->Root();
    for (const xml::Element& object : result.Children("Contents")) {
      keys.push_back(object.ChildText("Key"));
    }
    if (result.ChildText("IsTruncated") != "true") return keys;
    std::string next = result.ChildText("NextContinuationToken");
    // A server that repeats itself would otherwise be asked for ever.
    if (next.empty() || next == token) {
      return Fail(fmt::format("{}: the answer is truncated but gives no new continuation token",
                              request.what));
    }
    token = std::move(next);
  }
}

void S3Client::Abort(const std::string& bucket, const std::string& key,
                     const std::string& upload_id) {
  AwsRequest request = ObjectRequest("DELETE", bucket, key);
  request.query = {{"uploadId", upload_id}};
  request.what = fmt::format("AbortMultipartUpload {}", S3UrlOf(bucket, key));
  request.cancellable = false;
  request.max_attempts = 3;
  AwsResult<HttpResponse> response = aws_->Send(request);
  if (response) {
    aws_->Log(fmt::format("aborted the multipart upload of {}", S3UrlOf(bucket, key)));
  } else {
    aws_->Log(
        fmt::format("could not abort the multipart upload of {}: {}; its parts stay stored (and "
                    "billed) until a lifecycle rule removes incomplete uploads",
                    S3UrlOf(bucket, key), response.error().text));
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

  AwsRequest create = ObjectRequest("POST", bucket, key);
  create.query = {{"uploads", ""}};
  create.what = fmt::format("CreateMultipartUpload {}", where);
  if (!content_type.empty()) create.headers.emplace_back("content-type", content_type);
  AddEncryptionHeaders(create.headers);
  // Every part then carries its CRC32C, and S3 checks each against it.
  create.headers.emplace_back("x-amz-checksum-algorithm", "CRC32C");
  // Whole seconds, as Last-Modified has them.
  const auto created_at =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  AwsResult<HttpResponse> created = aws_->Send(create);
  if (!created) return Fail(created.error().text);
  auto created_xml = xml::Document::Parse(created->body);
  const std::string upload_id = created_xml ? created_xml->Root().Find("UploadId").Text() : "";
  if (upload_id.empty()) {
    return Fail(fmt::format("CreateMultipartUpload {}: the answer holds no UploadId", where));
  }
  aws_->Log(
      fmt::format("multipart upload of {}: {} parts of {} bytes", where, part_count, part_size));

  std::vector<std::string> etags(part_count);
  std::vector<std::string> checksums(part_count);
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  auto part_of = [&](size_t index) {
    return body.substr(std::min<size_t>(body.size(), index * part_size), part_size);
  };
  auto send_part = [&](size_t index, const StretchDigest& digest) {
    AwsRequest part = ObjectRequest("PUT", bucket, key);
    part.query = {{"partNumber", std::to_string(index + 1)}, {"uploadId", upload_id}};
    part.body_view = part_of(index);
    part.what = fmt::format("PUT {} part {} of {}", where, index + 1, part_count);
    checksums[index] = AddPayloadChecksum(part, digest.crc32c, digest.sha256);
    AwsResult<HttpResponse> response = aws_->Send(part);
    std::string error;
    if (!response) {
      error = response.error().text;
    } else if (etags[index] = response->Header("etag"); etags[index].empty()) {
      error = fmt::format("{}: the answer has no ETag", part.what);
    }
    if (error.empty()) {
      if (options_.part_sent) options_.part_sent(part.body_view->size());
      return true;
    }
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = error;
    failed = true;
    return false;
  };
  Sha256 whole;
  {
    // This thread reads the object once, in order, for the digests; each part is queued as its
    // own are known (a part is a view of the mapped file: the queue costs no copy). Hashing
    // runs far ahead of sending, so the senders stay busy. The first failure drops the parts
    // not yet sent.
    WorkerPool pool(std::min<size_t>(part_count, static_cast<size_t>(options_.concurrency)),
                    part_count);
    std::vector<std::future<void>> sent;
    for (size_t index = 0; index < part_count && !failed.load() && !aws_->Cancelled(); ++index) {
      StretchDigest digest = DigestStretch(part_of(index), whole, SignsPayload());
      sent.push_back(pool.Submit([&, index, digest = std::move(digest)] {
        if (!send_part(index, digest)) pool.Cancel();
      }));
    }
    // Destroying the pool would drop the parts still queued.
    for (const std::future<void>& part : sent) part.wait();
  }
  if (!failed.load() && aws_->Cancelled()) {
    failed = true;
    first_error = fmt::format("cancelled (multipart upload of {})", where);
  }
  if (failed.load()) {
    Abort(bucket, key, upload_id);
    return Fail(first_error);
  }

  xml::Writer parts;
  parts.Start("CompleteMultipartUpload")
      .Attribute("xmlns", "http://s3.amazonaws.com/doc/2006-03-01/");
  for (size_t i = 0; i < part_count; ++i) {
    parts.Start("Part")
        .Element("PartNumber", std::to_string(i + 1))
        .Element("ETag", etags[i])
        .Element("ChecksumCRC32C", checksums[i])
        .End();
  }
  auto parts_xml = parts.Finish();
  if (!parts_xml) {
    Abort(bucket, key, upload_id);
    return Fail(fmt::format("CompleteMultipartUpload {}: {}", where, parts_xml.error()));
  }
  AwsRequest complete = ObjectRequest("POST", bucket, key);
  complete.query = {{"uploadId", upload_id}};
  // The XML is small: Content-MD5 lets S3 check it (x-amz-checksum-crc32c here would name the
  // whole object's checksum, not the body's).
  complete.headers = {{"content-type", "application/xml"}, {"content-md5", Md5Base64(*parts_xml)}};
  complete.body = std::move(*parts_xml);
  complete.what = fmt::format("CompleteMultipartUpload {}", where);
  complete.error_in_body = true;
  int complete_attempts = 0;
  complete.attempts_made = &complete_attempts;
  AwsResult<HttpResponse> completed = aws_->Send(complete);
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
    AwsRequest head = ObjectRequest("HEAD", bucket, key);
    head.what = fmt::format("HEAD {}", where);
    head.cancellable = false;
    head.max_attempts = 3;
    AwsResult<HttpResponse> found = aws_->Send(head);
    if (found && found->Header("content-length") == std::to_string(body.size())) {
      std::string etag = found->Header("etag");
      std::optional<std::chrono::system_clock::time_point> modified =
          ParseHttpDate(found->Header("last-modified"));
      if (etag == MultipartEtag(etags) || (modified && *modified >= created_at)) {
        aws_->Log(fmt::format("{}: completed by an earlier attempt whose answer was lost",
                              complete.what));
        object.etag = etag;
        object.version_id = found->Header("x-amz-version-id");
        return object;
      }
    }
  }
  if (!completed) {
    Abort(bucket, key, upload_id);
    return Fail(completed.error().text);
  }
  if (auto result = xml::Document::Parse(completed->body)) {
    object.etag = result->Root().Find("ETag").Text();
  }
  if (object.etag.empty()) object.etag = completed->Header("etag");
  object.version_id = completed->Header("x-amz-version-id");
  return object;
}

Result<S3Object> S3Client::UploadFile(const std::string& bucket, const std::string& key,
                                      const std::string& path, std::string_view content_type) {
  FileBody file;
  if (Status opened = file.Open(path); !opened) return Fail(opened.error());
  std::string_view body = file.view();
  if (body.size() > options_.part_size) return MultipartUpload(bucket, key, body, content_type);
  return PutObject(bucket, key, body, content_type);
}

}  // namespace runner::aws
