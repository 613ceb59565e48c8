#include "runner/store/artifact_store.h"

#include <fmt/format.h>

#include <filesystem>

#include "runner/atomic_file.h"
#include "runner/store/local_store.h"
#include "runner/store/s3_store.h"

namespace runner {

Status ArtifactStore::GetToFile(const std::string& name, const std::string& path) {
  auto bytes = Get(name);
  if (!bytes) return Fail(bytes.error());
  return WriteFileAtomic(path, *bytes);
}

Result<std::unique_ptr<ArtifactStore>> OpenArtifactStore(std::string_view url,
                                                         ArtifactStoreOptions options) {
  if (url.starts_with("s3://")) return MakeS3Store(url, std::move(options));
  std::string path(url.starts_with("file://") ? url.substr(7) : url);
  if (path.empty()) {
    return Fail(fmt::format("store '{}' names no directory: give file:///abs/dir/ or a path", url));
  }
  if (path.find("://") != std::string::npos) {
    return Fail(
        fmt::format("store '{}' has an unknown scheme: use s3://bucket/prefix/, "
                    "file:///abs/dir/ or a relative path",
                    url));
  }
  if (!path.starts_with('/')) path = options.workspace + "/" + path;
  std::string root = std::filesystem::path(path).lexically_normal().string();
  while (root.size() > 1 && root.ends_with('/')) root.pop_back();
  return MakeLocalStore(std::move(root), std::move(options.cancelled));
}

}  // namespace runner
