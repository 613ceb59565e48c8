// S3 and S3-compatible stores, on the generic request layer (aws_client.h): single PUT for
// small objects, multipart with parts sent in parallel for large ones, conditional PUT, GET,
// HEAD and listing. Every object body and part carries x-amz-checksum-crc32c, which S3
// verifies; its x-amz-content-sha256 is UNSIGNED-PAYLOAD over https and the body's SHA-256 over
// http; throttling, 5xx, dropped connections and stalls are retried per request with
// exponential backoff and full jitter; a multipart upload that fails or is cancelled is aborted.
// Credentials, Authorization headers and signatures never appear in a message or a log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner::aws {

inline constexpr std::uint64_t kMiB = 1024 * 1024;
// S3's limits: every part but the last at least 5 MiB, at most 5 GiB, at most 10000 parts.
inline constexpr std::uint64_t kMinPartSize = 5 * kMiB;
inline constexpr std::uint64_t kMaxPartSize = 5 * 1024 * kMiB;
inline constexpr int kMaxParts = 10000;
// The most keys ListObjectsV2 returns in one answer.
inline constexpr int kMaxListKeys = 1000;

// How a bucket is addressed: `endpoint/bucket/key` or `bucket.endpoint/key`.
enum class PathStyle {
  kAuto,         // path-style for an IP address or localhost endpoint, or a bucket name that
                 // is not a DNS label (dots, capitals); else virtual-host
  kPath,         // path_style: true
  kVirtualHost,  // path_style: false
};

// `s3://bucket/key/prefix`: the bucket and the (possibly empty) key, not decoded.
struct S3Url {
  std::string bucket;
  std::string key;
};
// Fails on another scheme, an empty or invalid bucket name.
Result<S3Url> ParseS3Url(std::string_view url);

// The endpoint to use: `configured` when not empty, else AWS_ENDPOINT_URL_S3, else
// AWS_ENDPOINT_URL, else empty (AWS itself).
std::string ResolveS3Endpoint(std::string_view configured, const Environment& env);

// With the transport options of AwsClient; `cancelled` also aborts a multipart upload in
// progress.
struct S3ClientOptions : AwsTransportOptions {
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: https://s3.REGION.amazonaws.com.
  std::string endpoint;
  PathStyle path_style = PathStyle::kAuto;
  // Server-side encryption: empty, "AES256" or "aws:kms" (with an optional `kms_key_id`).
  std::string sse;
  std::string kms_key_id;
  // Objects larger than part_size go up as multipart uploads of parts this large (raised when
  // the object would need more than 10000 parts). The S3 client itself accepts any size >= 1
  // so that tests can exercise multipart on small bodies; S3 wants >= kMinPartSize.
  std::uint64_t part_size = 16 * kMiB;
  // Parts in flight at once for one multipart upload.
  int concurrency = 8;
  // Called with a part's size as S3 acknowledges each part, from several threads. Optional.
  std::function<void(std::uint64_t)> part_sent;
};

// An object as stored.
struct S3Object {
  std::string bucket;
  std::string key;
  std::uint64_t size = 0;
  std::string sha256;      // hex, of the whole content
  std::string etag;        // as S3 returned it, quotes included
  int parts = 0;           // 0 for a single PUT
  std::string version_id;  // x-amz-version-id, in a versioned bucket; else empty
};

// What HEAD tells of a stored object.
struct S3ObjectInfo {
  std::uint64_t size = 0;
  std::string etag;  // quotes included
};

// Thread-safe: several uploads may run at once on one client.
class S3Client {
 public:
  // Fails when the options cannot work (an endpoint that is not http(s)://host, sse unknown,
  // kms_key_id without aws:kms, part_size 0, concurrency < 1). `http` and `credentials` must
  // outlive the client.
  static Result<std::unique_ptr<S3Client>> Create(HttpClient& http,
                                                  CredentialsProvider& credentials,
                                                  S3ClientOptions options);

  // One PUT of `body`, whatever its size. `content_type` may be empty.
  Result<S3Object> PutObject(const std::string& bucket, const std::string& key,
                             std::string_view body, std::string_view content_type = {});

  // A multipart upload of `body` in parts of options.part_size (one part at least), sent by
  // up to options.concurrency threads; aborted when a part or the completion fails for good
  // or the upload is cancelled. The calling thread reads `body` once, in order, for every
  // digest (each part's CRC32C, the whole object's SHA-256) and queues each part as soon as
  // its CRC32C is known.
  Result<S3Object> MultipartUpload(const std::string& bucket, const std::string& key,
                                   std::string_view body, std::string_view content_type = {});

  // PutObject with `If-None-Match: *`: nullopt, and nothing written, when `key` already
  // exists (S3 answers 412).
  Result<std::optional<S3Object>> PutObjectIfAbsent(const std::string& bucket,
                                                    const std::string& key, std::string_view body,
                                                    std::string_view content_type = {});

  // The object's bytes; a missing object is an error naming it (NoSuchKey).
  Result<std::string> GetObject(const std::string& bucket, const std::string& key);
  // The object's bytes; nullopt when it does not exist (one GET, no HEAD first).
  Result<std::optional<std::string>> FindObject(const std::string& bucket, const std::string& key);

  // The object's size and ETag; nullopt when it does not exist.
  Result<std::optional<S3ObjectInfo>> HeadObject(const std::string& bucket, const std::string& key);

  // Every key in `bucket` that starts with `prefix` (all of them for an empty prefix), in the
  // order S3 gives them (UTF-8 binary order): ListObjectsV2 pages of `max_keys` (at most
  // kMaxListKeys; smaller for tests), each next page asked with the previous one's
  // continuation token.
  Result<std::vector<std::string>> ListObjects(const std::string& bucket, const std::string& prefix,
                                               int max_keys = kMaxListKeys);

  // Uploads the file at `path`: PutObject up to part_size bytes, MultipartUpload above. A
  // file over 1 MiB is memory-mapped (never copied into memory); a smaller one is read.
  Result<S3Object> UploadFile(const std::string& bucket, const std::string& key,
                              const std::string& path, std::string_view content_type = {});

  // The URL a request for `key` in `bucket` goes to (the key percent-encoded once per
  // segment, `/` kept).
  std::string ObjectUrl(const std::string& bucket, const std::string& key) const;

  const S3ClientOptions& options() const { return options_; }

 private:
  S3Client(S3ClientOptions options, std::unique_ptr<AwsClient> aws);

  bool UsePathStyle(const std::string& bucket) const;
  // An AwsRequest for `key` in `bucket`: host and path per the addressing style.
  AwsRequest ObjectRequest(std::string method, const std::string& bucket,
                           const std::string& key) const;
  void AddEncryptionHeaders(Pairs& headers) const;
  AwsResult<HttpResponse> SendGetObject(const std::string& bucket, const std::string& key);
  // Whether the signature covers the payload's SHA-256: over plain http only (over https the
  // payload is UNSIGNED-PAYLOAD, and S3 checks it against the signed CRC32C).
  bool SignsPayload() const;
  // Adds x-amz-checksum-crc32c (S3 checks the body against it) and the payload hash,
  // UNSIGNED-PAYLOAD over https or `sha256` (the body's) over http; returns the checksum.
  std::string AddPayloadChecksum(AwsRequest& request, std::uint32_t crc32c,
                                 const std::string& sha256) const;
  Result<std::optional<S3Object>> Put(const std::string& bucket, const std::string& key,
                                      std::string_view body, std::string_view content_type,
                                      bool if_absent);
  void Abort(const std::string& bucket, const std::string& key, const std::string& upload_id);

  S3ClientOptions options_;
  std::unique_ptr<AwsClient> aws_;
};

// `s3://bucket/key` for messages.
std::string S3UrlOf(std::string_view bucket, std::string_view key);

// Digests S3 uses: base64 MD5 for Content-MD5, hex MD5 for single-part ETags.
std::string Md5Base64(std::string_view data);
std::string Md5Hex(std::string_view data);

}  // namespace runner::aws
