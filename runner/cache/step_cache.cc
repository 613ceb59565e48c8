#include "runner/cache/step_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "runner/atomic_file.h"
#include "runner/file_select.h"
#include "runner/glob.h"
#include "runner/sha256.h"
#include "runner/workspace_path.h"

namespace runner {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr int kEntryFormat = 1;
// A blob no entry names yet may belong to an entry being stored: left alone this long.
constexpr auto kOrphanAge = std::chrono::minutes(10);

std::string BlobName(std::string_view sha256) {
  return fmt::format("blobs/{}/{}", sha256.substr(0, 2), sha256);
}

std::string EntryName(std::string_view key) { return fmt::format("entries/{}.json", key); }

bool IsHexDigest(std::string_view text) {
  return text.size() == 64 && std::ranges::all_of(text, [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The configuration in tagged fields, each tagged with its place in the tree, so that a value
// cannot move between keys or levels unnoticed.
void AddConfig(CacheKey& key, const ConfigNode& node, const std::string& place) {
  switch (node.type) {
    case ConfigNode::Type::kScalar:
      key.Add("config.scalar " + place, node.scalar.text);
      break;
    case ConfigNode::Type::kList:
      key.Add("config.list " + place, std::to_string(node.items.size()));
      for (size_t i = 0; i < node.items.size(); ++i) {
        AddConfig(key, node.items[i], place + "[" + std::to_string(i) + "]");
      }
      break;
    case ConfigNode::Type::kMap:
      key.Add("config.map " + place, std::to_string(node.fields.size()));
      for (const auto& [name, value] : node.fields) {
        key.Add("config.field " + place, name);
        AddConfig(key, value, place + "." + name);
      }
      break;
  }
}

// The files the input patterns select, without those a `!` pattern matches, each once.
Result<std::vector<SelectedFile>> InputFiles(const std::vector<std::string>& patterns,
                                             const std::string& cwd, const std::string& workspace) {
  std::vector<std::string> selected;
  std::vector<std::string> negated;
  for (const std::string& pattern : patterns) {
    if (pattern.starts_with('!')) {
      negated.push_back(pattern.substr(1));
    } else {
      selected.push_back(pattern);
    }
  }
  SelectOptions options;
  options.exclude = [&](const SelectedFile& file) {
    return std::ranges::any_of(negated, [&](const std::string& glob) {
      return GlobMatch(glob, file.source) || (file.directory && GlobMatch(glob, file.source + "/"));
    });
  };
  auto files = SelectFiles(selected, cwd, workspace, options);
  if (!files) return Fail("cache.inputs: " + files.error());
  return files;
}

Status PutBlob(ArtifactStore& store, const CachedFile& blob, const std::string* path,
               std::string_view bytes) {
  std::string name = BlobName(blob.sha256);
  auto stat = store.Stat(name);
  if (!stat) return Fail(stat.error());
  if (*stat && (*stat)->size == blob.size) return {};  // named by content: already there
  auto put = path ? store.PutFile(name, *path, "application/octet-stream")
                  : store.Put(name, bytes, "application/octet-stream");
  if (!put) return Fail(put.error());
  if (put->sha256 != blob.sha256) {
    return Fail(fmt::format("{} changed while it was stored", path ? *path : name));
  }
  return {};
}

// Blobs first, the entry last. `paths[i]` holds entry.files[i].
Status PutEntry(ArtifactStore& store, const CacheEntry& entry,
                const std::vector<std::string>& paths, std::string_view log_text) {
  for (size_t i = 0; i < entry.files.size(); ++i) {
    if (auto put = PutBlob(store, entry.files[i], &paths[i], ""); !put) return put;
  }
  if (auto put = PutBlob(store, entry.log, nullptr, log_text); !put) return put;
  auto put = store.Put(EntryName(entry.key), EncodeCacheEntry(entry), "application/json");
  if (!put) return Fail(put.error());
  return {};
}

// A blob's bytes, checked against what the entry says of it.
Result<std::string> GetBlob(ArtifactStore& store, const CachedFile& blob) {
  auto bytes = store.Get(BlobName(blob.sha256));
  if (!bytes) return Fail(bytes.error());
  if (bytes->size() != blob.size) {
    return Fail(fmt::format("blob {} has {} bytes, the entry says {}", blob.sha256, bytes->size(),
                            blob.size));
  }
  if (Sha256Hex(*bytes) != blob.sha256) {
    return Fail(fmt::format("blob {} does not match its digest", blob.sha256));
  }
  return bytes;
}

json FileJson(const CachedFile& file) {
  json out = {{"mode", file.mode}, {"size", file.size}, {"sha256", file.sha256}};
  if (!file.path.empty()) out["path"] = file.path;
  return out;
}

CachedFile FileFromJson(const json& value, bool with_path) {
  CachedFile file;
  if (with_path) {
    file.path = value.at("path").get<std::string>();
    if (auto bad = CheckStoreName(file.path); !bad)
      throw std::runtime_error("path: " + bad.error());
  }
  file.mode = value.at("mode").get<std::uint32_t>();
  file.size = value.at("size").get<std::uint64_t>();
  file.sha256 = value.at("sha256").get<std::string>();
  if (file.mode > 07777) throw std::runtime_error("mode out of range");
  if (!IsHexDigest(file.sha256)) throw std::runtime_error("sha256 is not a digest");
  return file;
}

}  // namespace

Result<std::string> StepKey(const StepKeyParts& parts, const std::string& cwd,
                            const std::string& workspace, FileDigests& digests) {
  CacheKey key("step", parts.version);
  key.Add("kind", parts.kind);
  if (parts.config) AddConfig(key, *parts.config, "");
  key.Add("dir", parts.dir);
  for (const auto& [name, value] : parts.env) key.Add("env " + name, value);
  for (const auto& [name, value] : parts.declared_env) {
    key.Add(value ? "declared-env " + name : "declared-env-unset " + name, value.value_or(""));
  }
  auto files = InputFiles(parts.inputs, cwd, workspace);
  if (!files) return Fail(files.error());
  key.Add("inputs", std::to_string(files->size()));
  for (const SelectedFile& file : *files) {
    auto digest = digests.Digest(file.path);
    if (!digest) return Fail("cache.inputs: " + digest.error());
    key.Add("input.path", file.source);
    key.Add("input.exec", (digest->mode & 0111) ? "x" : "-");
    key.Add("input.sha256", digest->sha256);
  }
  return key.FinishHex();
}

std::string EncodeCacheEntry(const CacheEntry& entry) {
  json outputs = json::array();
  for (const auto& [name, value] : entry.outputs) outputs.push_back({name, value});
  json artifacts = json::array();
  for (const Artifact& artifact : entry.artifacts) {
    artifacts.push_back(
        {{"path", artifact.path}, {"size", artifact.size}, {"sha256", artifact.sha256}});
  }
  json files = json::array();
  for (const CachedFile& file : entry.files) files.push_back(FileJson(file));
  json out = {{"format", kEntryFormat}, {"key", entry.key},          {"step", entry.step},
              {"build", entry.build},   {"outputs", outputs},        {"artifacts", artifacts},
              {"files", files},         {"log", FileJson(entry.log)}};
  return out.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<CacheEntry> DecodeCacheEntry(std::string_view text, std::string_view key) {
  try {
    json value = json::parse(text);
    if (value.at("format").get<int>() != kEntryFormat) {
      return Fail("unknown entry format " + value.at("format").dump());
    }
    CacheEntry entry;
    entry.key = value.at("key").get<std::string>();
    if (entry.key != key) return Fail(fmt::format("it is the entry of key {}", entry.key));
    entry.step = value.at("step").get<std::string>();
    entry.build = value.at("build").get<std::string>();
    for (const json& output : value.at("outputs")) {
      entry.outputs.emplace_back(output.at(0).get<std::string>(), output.at(1).get<std::string>());
    }
    for (const json& artifact : value.at("artifacts")) {
      entry.artifacts.push_back({artifact.at("path").get<std::string>(),
                                 artifact.at("size").get<std::uint64_t>(),
                                 artifact.at("sha256").get<std::string>(), ""});
    }
    for (const json& file : value.at("files")) entry.files.push_back(FileFromJson(file, true));
    entry.log = FileFromJson(value.at("log"), false);
    return entry;
  } catch (const std::exception& error) {
    return Fail(error.what());
  }
}

StepCache::StepCache(StepCacheOptions options)
    : options_(std::move(options)), digests_(options_.dir + "/stat-data") {
  auto local = OpenArtifactStore(options_.dir, {});
  // A local directory always opens: its checks are of the URL, and STATE/cache is a path.
  local_ = std::move(*local);
}

std::optional<CacheHit> StepCache::Restore(const std::string& key, const std::string& cwd,
                                           const std::string& workspace, const CacheLog& log) {
  if (auto hit = RestoreFrom(*local_, key, cwd, workspace, log)) {
    // Least recently used is judged by the entry's mtime.
    ::utimensat(AT_FDCWD, (options_.dir + "/" + EntryName(key)).c_str(), nullptr, 0);
    hit->store = "local";
    return hit;
  }
  if (!options_.shared) return std::nullopt;
  auto hit = RestoreFrom(*options_.shared, key, cwd, workspace, log);
  if (!hit) return std::nullopt;
  hit->store = options_.shared->url();
  std::vector<std::string> paths;
  for (const CachedFile& file : hit->entry.files) paths.push_back(cwd + "/" + file.path);
  if (auto copied = PutEntry(*local_, hit->entry, paths, hit->log); !copied) {
    log("runner: cache: the entry from " + hit->store + " was not copied into " + options_.dir +
        ": " + copied.error() + "\n");
  }
  return hit;
}

std::optional<CacheHit> StepCache::RestoreFrom(ArtifactStore& store, const std::string& key,
                                               const std::string& cwd, const std::string& workspace,
                                               const CacheLog& log) {
  std::string name = EntryName(key);
  auto miss = [&](const std::string& why) -> std::optional<CacheHit> {
    log(fmt::format("runner: cache: warning: the entry {} is not usable ({}); running the step\n",
                    store.UrlOf(name), why));
    return std::nullopt;
  };
  auto exists = store.Stat(name);
  if (!exists) return miss(exists.error());
  if (!*exists) return std::nullopt;
  auto text = store.Get(name);
  if (!text) return miss(text.error());
  auto entry = DecodeCacheEntry(*text, key);
  if (!entry) return miss("it is corrupt: " + entry.error());
  // Every blob fetched and checked into a temporary file beside its destination before any
  // destination is replaced.
  std::vector<std::unique_ptr<AtomicFileWriter>> writers;
  for (const CachedFile& file : entry->files) {
    auto dest = ResolveInWorkspace(file.path, cwd, workspace);
    if (!dest) return miss(dest.error());
    auto bytes = GetBlob(store, file);
    if (!bytes) return miss(bytes.error());
    auto writer = std::make_unique<AtomicFileWriter>();
    if (auto opened = writer->Open(*dest); !opened) return miss(opened.error());
    writer->Append(*bytes);
    if (::fchmod(writer->fd(), file.mode) != 0) {
      return miss(fmt::format("cannot set the mode of {}: {}", *dest, ErrnoText(errno)));
    }
    writers.push_back(std::move(writer));
  }
  auto log_text = GetBlob(store, entry->log);
  if (!log_text) return miss(log_text.error());
  for (auto& writer : writers) {
    // No fsync: a crash leaves the entry, which the next build restores again.
    if (auto committed = writer->Commit(/*sync=*/false); !committed) {
      return miss(committed.error());
    }
  }
  return CacheHit{std::move(*entry), std::move(*log_text), ""};
}

std::vector<std::string> StepCache::Store(CacheEntry entry, const std::vector<std::string>& outputs,
                                          std::string_view log_text, const std::string& cwd,
                                          const std::string& workspace, const CacheLog& log) {
  auto skip = [&](const std::string& why) {
    log("runner: cache: not stored: " + why + "\n");
    return std::vector<std::string>();
  };
  auto files =
      outputs.empty() ? Result<std::vector<SelectedFile>>() : SelectFiles(outputs, cwd, workspace);
  if (!files) return skip("cache.outputs: " + files.error());
  std::vector<std::string> paths;
  for (const SelectedFile& file : *files) {
    struct stat info {};
    if (::stat(file.path.c_str(), &info) != 0) {
      return skip(fmt::format("cannot stat {}: {}", file.path, ErrnoText(errno)));
    }
    auto sha256 = FileSha256Hex(file.path);
    if (!sha256) return skip(sha256.error());
    entry.files.push_back({file.source, static_cast<std::uint32_t>(info.st_mode & 07777),
                           static_cast<std::uint64_t>(info.st_size), *sha256});
    paths.push_back(file.path);
  }
  entry.log = {"", 0644, log_text.size(), Sha256Hex(log_text)};
  std::vector<std::string> stored;
  if (auto put = PutEntry(*local_, entry, paths, log_text); put) {
    stored.push_back("local");
  } else {
    log("runner: cache: not stored in " + options_.dir + ": " + put.error() + "\n");
  }
  if (options_.shared && options_.write_shared) {
    if (auto put = PutEntry(*options_.shared, entry, paths, log_text); put) {
      stored.push_back(options_.shared->url());
    } else {
      log("runner: cache: not stored in " + options_.shared->url() + ": " + put.error() + "\n");
    }
  }
  return stored;
}

Status StepCache::Evict(std::uint64_t max_bytes) {
  struct EntryFile {
    std::string path;
    fs::file_time_type used;
    std::uint64_t size = 0;
    std::vector<std::string> blobs;
  };
  std::error_code ec;
  std::uint64_t total = 0;
  // path -> size and mtime
  std::map<std::string, std::pair<std::uint64_t, fs::file_time_type>> blobs;
  for (const auto& file : fs::recursive_directory_iterator(options_.dir + "/blobs", ec)) {
    if (!file.is_regular_file(ec) || file.path().filename().string().starts_with('.')) continue;
    std::uint64_t size = file.file_size(ec);
    blobs[file.path().string()] = {size, file.last_write_time(ec)};
    total += size;
  }
  std::vector<EntryFile> entries;
  for (const auto& file : fs::directory_iterator(options_.dir + "/entries", ec)) {
    std::string name = file.path().filename().string();
    if (!file.is_regular_file(ec) || !name.ends_with(".json") || name.starts_with('.')) continue;
    entries.push_back({file.path().string(), file.last_write_time(ec), file.file_size(ec), {}});
    total += entries.back().size;
  }
  if (total <= max_bytes) return {};
  // Over the limit: only now is every entry read, for the blobs it names.
  std::map<std::string, int> references;
  for (EntryFile& entry : entries) {
    std::string name = fs::path(entry.path).stem().string();
    auto text = ReadFile(entry.path);
    auto decoded = text ? DecodeCacheEntry(*text, name) : Result<CacheEntry>(Fail(text.error()));
    if (!decoded) {
      entry.used = fs::file_time_type::min();  // unusable: the first to go
      continue;
    }
    for (const CachedFile& blob : decoded->files) {
      entry.blobs.push_back(options_.dir + "/" + BlobName(blob.sha256));
    }
    entry.blobs.push_back(options_.dir + "/" + BlobName(decoded->log.sha256));
    for (const std::string& blob : entry.blobs) ++references[blob];
  }
  auto remove = [&](const std::string& path, std::uint64_t size) {
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) total -= std::min(total, size);
  };
  auto old = fs::file_time_type::clock::now() - kOrphanAge;
  for (const auto& [path, info] : blobs) {
    if (total <= max_bytes) break;
    if (!references.contains(path) && info.second < old) remove(path, info.first);
  }
  std::ranges::sort(entries, {}, &EntryFile::used);
  for (const EntryFile& entry : entries) {
    if (total <= max_bytes) break;
    remove(entry.path, entry.size);
    for (const std::string& blob : entry.blobs) {
      auto found = blobs.find(blob);
      if (--references[blob] == 0 && found != blobs.end()) remove(blob, found->second.first);
    }
  }
  if (total > max_bytes) {
    return Fail(fmt::format("the local cache {} still holds {} bytes (the limit is {})",
                            options_.dir, total, max_bytes));
  }
  return {};
}

}  // namespace runner
