#include "runner/store/s3_store.h"

#include <fmt/format.h>

#include <algorithm>

#include "runner/aws/service_client.h"

namespace runner {

namespace {

class S3Store : public ArtifactStore {
 public:
  S3Store(aws::S3Url location, aws::AwsConnection connection, std::unique_ptr<aws::S3Client> client)
      : bucket_(std::move(location.bucket)),
        prefix_(std::move(location.key)),
        connection_(std::move(connection)),
        client_(std::move(client)) {
    if (!prefix_.empty() && !prefix_.ends_with('/')) prefix_ += '/';
    url_ = aws::S3UrlOf(bucket_, prefix_);
  }

  const std::string& url() const override { return url_; }

  std::string Describe() const override {
    const aws::S3ClientOptions& options = client_->options();
    return fmt::format("{} (region {}{})", url_, options.region,
                       options.endpoint.empty() ? "" : ", endpoint " + options.endpoint);
  }

  Result<StoredObject> PutFile(const std::string& name, const std::string& path,
                               std::string_view content_type) override {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    return Stored(name, client_->UploadFile(bucket_, prefix_ + name, path, content_type));
  }

  Result<StoredObject> Put(const std::string& name, std::string_view bytes,
                           std::string_view content_type) override {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    return Stored(name, client_->PutObject(bucket_, prefix_ + name, bytes, content_type));
  }

  Result<std::optional<StoredObject>> PutIfAbsent(const std::string& name, std::string_view bytes,
                                                  std::string_view content_type) override {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    auto object = client_->PutObjectIfAbsent(bucket_, prefix_ + name, bytes, content_type);
    if (!object) return Fail(object.error());
    if (!*object) return std::nullopt;
    return Stored(name, std::move(**object));
  }

  Result<std::string> Get(const std::string& name) override {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    return client_->GetObject(bucket_, prefix_ + name);
  }

  Result<std::optional<std::string>> Find(const std::string& name) override {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    return client_->FindObject(bucket_, prefix_ + name);
  }

  Result<std::optional<StoredObjectInfo>> Stat(const std::string& name) override {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    auto info = client_->HeadObject(bucket_, prefix_ + name);
    if (!info) {
      // A HEAD answer has no body, so its error says "403" but not why; a GET's says
      // SignatureDoesNotMatch or AccessDenied, which a user can act on.
      auto why = client_->GetObject(bucket_, prefix_ + name);
      return Fail(why ? info.error() : why.error());
    }
    if (!*info) return std::nullopt;
    return StoredObjectInfo{(*info)->size, (*info)->etag};
  }

  Result<std::vector<std::string>> List(const std::string& prefix) override {
    if (Status ok = CheckStorePrefix(prefix); !ok) return Fail(ok.error());
    auto keys = client_->ListObjects(bucket_, prefix_ + prefix);
    if (!keys) return Fail(keys.error());
    std::vector<std::string> names;
    for (const std::string& key : *keys) {
      if (!key.starts_with(prefix_ + prefix)) {
        return Fail(
            fmt::format("ListObjectsV2 {}: the answer holds '{}', which does not start "
                        "with the prefix",
                        UrlOf(prefix), key));
      }
      std::string name = key.substr(prefix_.size());
      if (CheckStoreName(name)) names.push_back(std::move(name));
    }
    std::ranges::sort(names);
    return names;
  }

 private:
  Result<StoredObject> Stored(const std::string& name, Result<aws::S3Object> object) const {
    if (!object) return Fail(object.error());
    StoredObject out;
    out.name = name;
    out.key = object->key;
    out.url = aws::S3UrlOf(bucket_, object->key);
    out.size = object->size;
    out.sha256 = object->sha256;
    out.etag = object->etag;
    out.version_id = object->version_id;
    out.parts = object->parts;
    return out;
  }

  std::string bucket_;
  std::string prefix_;  // empty or ending in '/'
  std::string url_;
  aws::AwsConnection connection_;  // what client_ uses, unless the caller's
  std::unique_ptr<aws::S3Client> client_;
};

}  // namespace

Result<std::unique_ptr<ArtifactStore>> MakeS3Store(std::string_view url,
                                                   ArtifactStoreOptions options) {
  auto location = aws::ParseS3Url(url);
  if (!location) return Fail(location.error());
  aws::AwsConnection connection = aws::ConnectAws(options.env, options.http, options.credentials);
  aws::S3ClientOptions client_options;
  client_options.region = options.region.empty() ? aws::DefaultRegion(options.env) : options.region;
  client_options.endpoint = aws::ResolveS3Endpoint(options.endpoint, options.env);
  client_options.path_style = options.path_style;
  client_options.sse = options.sse;
  client_options.kms_key_id = options.kms_key_id;
  client_options.part_size = options.part_size;
  client_options.concurrency = options.concurrency;
  client_options.log = std::move(options.log);
  client_options.cancelled = std::move(options.cancelled);
  client_options.part_sent = std::move(options.part_sent);
  client_options.sleep = std::move(options.sleep);
  auto client =
      aws::S3Client::Create(*connection.http, *connection.credentials, std::move(client_options));
  if (!client) return Fail(client.error());
  return std::unique_ptr<ArtifactStore>(
      std::make_unique<S3Store>(std::move(*location), std::move(connection), std::move(*client)));
}

}  // namespace runner
