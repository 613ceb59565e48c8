#include "runner/store/artifact_store.h"

#include <fmt/format.h>

#include <filesystem>

#include "runner/atomic_file.h"
#include "runner/store/local_store.h"
#include "runner/store/s3_store.h"

namespace runner {

namespace {

// `path` split at '/': the problem with the first segment that cannot be part of a store
// path, or empty.
std::string StorePathProblem(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) return "it holds a NUL character";
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view segment = path.substr(start, slash - start);
    if (segment.empty()) return "it has an empty segment (a leading, trailing or double '/')";
    if (segment == "." || segment == "..") {
      return fmt::format("it has a '{}' segment", segment);
    }
    if (slash == std::string_view::npos) return "";
    start = slash + 1;
  }
}

// Printable for a message: a NUL shown as \0.
std::string Shown(std::string_view text) {
  std::string out;
  for (char c : text) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

}  // namespace

Status CheckStoreName(std::string_view name) {
  std::string problem = name.empty() ? "it is empty" : StorePathProblem(name);
  if (problem.empty()) return {};
  return Fail(fmt::format(
      "'{}' is not a name in a store: {}; names are relative paths such as "
      "'main/orders-main-7/app.zip' (check what the name was built from, e.g. the branch)",
      Shown(name), problem));
}

Status CheckStorePrefix(std::string_view prefix) {
  if (prefix.empty()) return {};
  std::string_view path = prefix.ends_with('/') ? prefix.substr(0, prefix.size() - 1) : prefix;
  std::string problem = StorePathProblem(path);
  if (problem.empty()) return {};
  return Fail(fmt::format(
      "'{}' cannot start names in a store: {}; a prefix is a relative path such as 'stg/'",
      Shown(prefix), problem));
}

Status ArtifactStore::GetToFile(const std::string& name, const std::string& path) {
  auto bytes = Get(name);
  if (!bytes) return Fail(bytes.error());
  return WriteFileAtomic(path, *bytes);
}

Result<std::unique_ptr<ArtifactStore>> OpenArtifactStore(std::string_view url,
                                                         ArtifactStoreOptions options) {
  bool s3 = url.starts_with("s3://");
  std::string_view path = s3 ? url.substr(5) : url.starts_with("file://") ? url.substr(7) : url;
  if (!s3 && path.empty()) {
    return Fail(fmt::format("store '{}' names no directory: give file:///abs/dir/ or a path", url));
  }
  if (!s3 && path.find("://") != std::string::npos) {
    return Fail(
        fmt::format("store '{}' has an unknown scheme: use s3://bucket/prefix/, "
                    "file:///abs/dir/ or a relative path",
                    url));
  }
  // The prefix below the bucket, or the directory without its leading '/'.
  std::string_view inner = path;
  if (s3)
    inner = inner.find('/') == std::string_view::npos ? "" : inner.substr(inner.find('/') + 1);
  if (!s3 && inner.starts_with('/')) inner.remove_prefix(1);
  while (inner.ends_with('/')) inner.remove_suffix(1);
  if (std::string problem = inner.empty() ? "" : StorePathProblem(inner); !problem.empty()) {
    return Fail(
        fmt::format("store '{}' cannot be used: {}; a store path is refused rather than "
                    "normalised, so that no part of it (a branch, a build id) can move "
                    "it elsewhere",
                    Shown(url), problem));
  }
  if (s3) return MakeS3Store(url, std::move(options));
  std::string dir(path);
  if (!dir.starts_with('/')) dir = options.workspace + "/" + dir;
  std::string root = std::filesystem::path(dir).lexically_normal().string();
  while (root.size() > 1 && root.ends_with('/')) root.pop_back();
  return MakeLocalStore(std::move(root), std::move(options.cancelled));
}

}  // namespace runner
