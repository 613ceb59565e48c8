// Where builds are published (SPEC sections 4, 6, 7): a local directory or an S3 prefix behind
// one interface, so the upload step, deploys, rollbacks and the build records use either the
// same way and tests use a directory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/aws/s3_client.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner {

// An object as stored.
struct StoredObject {
  std::string name;  // below the store's prefix
  std::string key;   // the S3 key; for a local store, the name
  std::string url;   // s3://bucket/key or file:///dir/name
  std::uint64_t size = 0;
  std::string sha256;  // hex
  // S3's ETag, quotes included; a local store gives the quoted MD5 (S3's for a single PUT).
  std::string etag;
  int parts = 0;           // S3 multipart parts; 0 for a single PUT and a local store
  std::string version_id;  // S3's, in a versioned bucket; else empty
};

// What Stat tells of a stored object.
struct StoredObjectInfo {
  std::uint64_t size = 0;
  std::string etag;
};

// Names are paths below the prefix with '/' separators (see CheckStoreName). Every operation
// refuses a name CheckStoreName refuses, on S3 as on a local store, so that a name built from
// push data (a branch of "../..") names the same object everywhere and never one outside the
// store; a local store also refuses a name that resolves outside its root through a symlink.
// Implementations are thread-safe: several puts may run at once.
class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;

  // The prefix as a URL ending in '/': "s3://bucket/prefix/" or "file:///abs/dir/".
  virtual const std::string& url() const = 0;
  // The prefix and where it is, for the log ("s3://b/p/ (region eu-west-1)").
  virtual std::string Describe() const = 0;

  // Stores the file at `path` under `name`, whole or not at all (local: temporary file,
  // rename, directory synced; S3: one PUT, or a multipart upload aborted on failure).
  virtual Result<StoredObject> PutFile(const std::string& name, const std::string& path,
                                       std::string_view content_type) = 0;
  // Stores `bytes` under `name`, replacing what is there, whole or not at all.
  virtual Result<StoredObject> Put(const std::string& name, std::string_view bytes,
                                   std::string_view content_type) = 0;
  // Stores `bytes` under `name` unless something is already there; nullopt, and nothing
  // changed, when it is (local: a hard link that fails on an existing name; S3:
  // `If-None-Match: *`, which answers 412).
  virtual Result<std::optional<StoredObject>> PutIfAbsent(const std::string& name,
                                                          std::string_view bytes,
                                                          std::string_view content_type) = 0;
  // The bytes of `name`; an error naming the URL when it does not exist.
  virtual Result<std::string> Get(const std::string& name) = 0;
  // The bytes of `name`; nullopt when it does not exist. One request, where Stat then Get
  // would be two (and could see the object go in between).
  virtual Result<std::optional<std::string>> Find(const std::string& name) = 0;
  // Size and ETag of `name`; nullopt when it does not exist.
  virtual Result<std::optional<StoredObjectInfo>> Stat(const std::string& name) = 0;
  // The names that start with `prefix` (a string prefix: "stg/" lists below stg, "stg/2026"
  // the names there that start with 2026, "" every name), sorted bytewise. A prefix is refused
  // as CheckStorePrefix says. S3: ListObjectsV2, page after page; an object no name can reach
  // (a console's `dir/` marker, `a//b`) is left out. Local: the regular files below the root,
  // without following symlinks, and without the temporary files of a write in progress
  // (`.NAME.tmp.XXXXXX`); a root not created yet lists nothing.
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;

  // Writes the bytes of `name` to `path` atomically.
  Status GetToFile(const std::string& name, const std::string& path);
  // url() + name.
  std::string UrlOf(std::string_view name) const { return url() + std::string(name); }
};

// Whether `name` can name an object in a store. Refused, never normalised: an empty name, a
// NUL, a name starting or ending in '/' (an absolute-looking key), an empty segment ("a//b"),
// a `.` or `..` segment. S3 would store such keys literally and a directory could not, so
// both refuse them alike. The error names `name` and says what to do.
Status CheckStoreName(std::string_view name);

// Whether `prefix` can start names in a store: empty, or a name (CheckStoreName) that may end
// in one '/'.
Status CheckStorePrefix(std::string_view prefix);

struct ArtifactStoreOptions {
  // A relative local store (`file://rel`, `rel/dir`) is relative to this absolute directory.
  std::string workspace;
  // S3 only: credentials, region and endpoint come from here when not given below.
  Environment env;
  std::string region;    // empty: aws::DefaultRegion(env)
  std::string endpoint;  // empty: aws::ResolveS3Endpoint("", env)
  aws::PathStyle path_style = aws::PathStyle::kAuto;
  std::string sse;
  std::string kms_key_id;
  std::uint64_t part_size = 16 * aws::kMiB;
  int concurrency = 8;
  // Progress and retry lines (never a secret); called from several threads. Optional.
  std::function<void(std::string_view)> log;
  // Called with a part's size as each part of a multipart upload is stored (S3), from several
  // threads. Optional.
  std::function<void(std::uint64_t)> part_sent;
  // True stops the transfers in progress ("cancelled"). Optional.
  std::function<bool()> cancelled;
  // The HTTP client and credentials of an S3 store (default: libcurl with AWS_CA_BUNDLE, the
  // default credentials chain): a deploy's assumed role, a test's fakes. They must outlive
  // the store.
  aws::HttpClient* http = nullptr;
  aws::CredentialsProvider* credentials = nullptr;
  // For tests: the S3 client's waits between retries.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// The store `url` names: `s3://bucket/prefix` an S3 store, `file:///abs/dir`, `file://rel/dir`
// or a plain path a local one (created on first put). Fails on another scheme, S3 options
// that cannot work, and a path (the S3 prefix, the local directory) that CheckStoreName would
// refuse once its leading and trailing '/' are set aside: a store URL that climbs with `..`
// (`.runner/store/../../x`, a `to` built from a branch of "../..") is refused, not normalised.
Result<std::unique_ptr<ArtifactStore>> OpenArtifactStore(std::string_view url,
                                                         ArtifactStoreOptions options);

}  // namespace runner
