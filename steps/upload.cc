#include "steps/upload.h"

#include <dirent.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "runner/artifact_store.h"
#include "runner/aws/s3_client.h"
#include "runner/config_node.h"
#include "runner/expression.h"
#include "runner/glob.h"
#include "runner/manifest.h"
#include "runner/path.h"

namespace runner {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const std::vector<std::string> kConfigKeys = {"to",         "files",      "region",
                                              "endpoint",   "path_style", "sse",
                                              "kms_key_id", "part_size",  "concurrency"};
constexpr int kDefaultConcurrency = 8;
constexpr int kMaxConcurrency = 64;
constexpr std::uint64_t kDefaultPartSize = 16 * aws::kMiB;

std::string ErrnoText() { return std::strerror(errno); }

std::string HumanSize(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < aws::kMiB) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < 1024 * aws::kMiB) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / aws::kMiB);
  }
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1024.0 * aws::kMiB));
}

// Every regular file below `abs` (symlinks to files followed, symlinked directories not
// walked, so there is no loop), as paths relative to `abs`, sorted.
Status WalkFiles(const std::string& abs, const std::string& rel, std::vector<std::string>& out) {
  DIR* handle = ::opendir(abs.c_str());
  if (handle == nullptr)
    return Fail(fmt::format("cannot read directory '{}': {}", abs, ErrnoText()));
  std::vector<std::string> names;
  while (struct dirent* item = ::readdir(handle)) {
    std::string_view name = item->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(handle);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string child = abs + "/" + name;
    std::string child_rel = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    if (::lstat(child.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (Status walked = WalkFiles(child, child_rel, out); !walked) return walked;
    } else if (S_ISREG(st.st_mode) ||
               (S_ISLNK(st.st_mode) && ::stat(child.c_str(), &st) == 0 && S_ISREG(st.st_mode))) {
      out.push_back(child_rel);
    }
  }
  return {};
}

std::string ContentType(std::string_view name) {
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {".json", "application/json"}, {".zip", "application/zip"}, {".yaml", "application/yaml"},
      {".yml", "application/yaml"},  {".txt", "text/plain"},      {".html", "text/html"},
      {".xml", "application/xml"},   {".gz", "application/gzip"}, {".tar", "application/x-tar"},
      {".hcl", "text/plain"},
  };
  size_t dot = name.rfind('.');
  if (dot != std::string_view::npos && name.find('/', dot) == std::string_view::npos) {
    if (auto it = kTypes.find(name.substr(dot)); it != kTypes.end()) return it->second;
  }
  return "application/octet-stream";
}

std::string WorkspaceRelative(const std::string& path, const std::string& workspace) {
  std::string root = workspace.ends_with('/') ? workspace : workspace + "/";
  if (path.starts_with(root)) return path.substr(root.size());
  return path;
}

std::string NowIso8601() {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", now);
}

// The step's configuration, expanded and checked.
struct UploadOptions {
  std::string to;
  std::vector<std::string> files;
  std::string region;
  std::string endpoint;
  aws::PathStyle path_style = aws::PathStyle::kAuto;
  std::string sse;
  std::string kms_key_id;
  std::uint64_t part_size = kDefaultPartSize;
  int concurrency = kDefaultConcurrency;
};

std::optional<aws::PathStyle> ParsePathStyle(std::string_view text) {
  if (text == "auto") return aws::PathStyle::kAuto;
  if (text == "true") return aws::PathStyle::kPath;
  if (text == "false") return aws::PathStyle::kVirtualHost;
  return std::nullopt;
}

Status CheckPartSize(std::string_view text) {
  auto size = ParseByteSize(text);
  if (!size) return Fail(size.error());
  if (*size < aws::kMinPartSize || *size > aws::kMaxPartSize) {
    return Fail(fmt::format("part_size {} is outside S3's limits: 5MiB to 5GiB", text));
  }
  return {};
}

Status CheckTo(std::string_view to) {
  if (to.empty()) return Fail("'to' is empty");
  if (to.starts_with("s3://")) {
    if (auto url = aws::ParseS3Url(to); !url) return Fail(url.error());
    return {};
  }
  if (to.starts_with("file://")) {
    if (to.size() == 7) return Fail("'to' file:// names no directory");
    return {};
  }
  if (to.find("://") != std::string_view::npos) {
    return Fail(
        fmt::format("'to' {} has an unknown scheme: use s3://bucket/prefix/, "
                    "file:///abs/dir/ or a relative path",
                    to));
  }
  return {};
}

std::string ScalarText(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

Result<UploadOptions> ParseOptions(const Json& config) {
  if (!config.is_object()) return Fail("upload: the configuration must be a map");
  UploadOptions options;
  std::vector<std::string> errors;
  for (const auto& [key, value] : config.items()) {
    if (std::find(kConfigKeys.begin(), kConfigKeys.end(), key) == kConfigKeys.end()) {
      errors.push_back(fmt::format("unknown key '{}'", key));
    }
  }
  if (auto to = config.find("to"); to != config.end()) {
    options.to = ScalarText(*to);
    if (Status ok = CheckTo(options.to); !ok) errors.push_back(ok.error());
  } else {
    errors.push_back("missing 'to'");
  }
  if (auto files = config.find("files"); files != config.end()) {
    if (files->is_array()) {
      for (const Json& item : *files) options.files.push_back(ScalarText(item));
    } else {
      options.files.push_back(ScalarText(*files));
    }
    if (options.files.empty()) errors.push_back("'files' is empty");
    for (const std::string& file : options.files) {
      if (file.empty()) errors.push_back("'files' has an empty entry");
    }
  } else {
    errors.push_back("missing 'files'");
  }
  auto text = [&](const char* key) -> std::string {
    auto it = config.find(key);
    return it == config.end() ? std::string() : ScalarText(*it);
  };
  options.region = text("region");
  options.endpoint = text("endpoint");
  if (std::string style = text("path_style"); !style.empty()) {
    if (auto parsed = ParsePathStyle(style)) {
      options.path_style = *parsed;
    } else {
      errors.push_back(fmt::format("path_style '{}': use auto, true or false", style));
    }
  }
  options.sse = text("sse");
  if (!options.sse.empty() && options.sse != "AES256" && options.sse != "aws:kms") {
    errors.push_back(fmt::format("sse '{}': use AES256 or aws:kms", options.sse));
  }
  options.kms_key_id = text("kms_key_id");
  if (!options.kms_key_id.empty() && options.sse != "aws:kms") {
    errors.push_back("kms_key_id needs sse: aws:kms");
  }
  if (std::string size = text("part_size"); !size.empty()) {
    if (Status ok = CheckPartSize(size); !ok) {
      errors.push_back(ok.error());
    } else {
      options.part_size = *ParseByteSize(size);
    }
  }
  if (std::string concurrency = text("concurrency"); !concurrency.empty()) {
    char* end = nullptr;
    long value = std::strtol(concurrency.c_str(), &end, 10);
    if (*end != '\0' || value < 1 || value > kMaxConcurrency) {
      errors.push_back(fmt::format("concurrency '{}': give a whole number from 1 to {}",
                                   concurrency, kMaxConcurrency));
    } else {
      options.concurrency = static_cast<int>(value);
    }
  }
  if (!errors.empty()) {
    std::string message = "upload: ";
    for (size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i];
    return Fail(message);
  }
  return options;
}

// Serializes log lines from the upload threads.
class SharedLog {
 public:
  explicit SharedLog(StepIo& io) : io_(io) {}
  void Line(std::string_view line) {
    std::lock_guard lock(mutex_);
    io_.Log(fmt::format("{}\n", line));
  }

 private:
  StepIo& io_;
  std::mutex mutex_;
};

// Runs `work(i)` for i in [0, count) on up to `threads` threads; stops handing out work after
// the first failure, which it returns.
Status ParallelFor(size_t count, int threads, const std::function<Status(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::string first_error;
  auto run = [&] {
    while (!failed.load()) {
      size_t index = next.fetch_add(1);
      if (index >= count) return;
      if (Status status = work(index); !status) {
        std::lock_guard lock(mutex);
        if (first_error.empty()) first_error = status.error();
        failed = true;
      }
    }
  };
  {
    std::vector<std::jthread> workers;
    size_t n = std::min<size_t>(count, static_cast<size_t>(std::max(threads, 1)));
    for (size_t i = 1; i < n; ++i) workers.emplace_back(run);
    run();
  }
  if (failed.load()) return Fail(first_error);
  return {};
}

// Publishes `sources` to the store `options.to` names, then manifest.json.
Status UploadToStore(const UploadOptions& options, const std::vector<UploadSource>& sources,
                     StepIo& io, std::vector<ManifestObject>& objects, std::string& url,
                     std::string& manifest_url) {
  SharedLog log(io);
  ArtifactStoreOptions store_options;
  store_options.workspace = io.workspace();
  store_options.env = io.env();
  store_options.region = options.region;
  store_options.endpoint = options.endpoint;
  store_options.path_style = options.path_style;
  store_options.sse = options.sse;
  store_options.kms_key_id = options.kms_key_id;
  store_options.part_size = options.part_size;
  store_options.concurrency = options.concurrency;
  store_options.log = [&log](std::string_view line) { log.Line(line); };
  store_options.cancelled = [&io] { return io.cancelled(); };
  auto store = OpenArtifactStore(options.to, std::move(store_options));
  if (!store) return Fail("upload: " + store.error());
  url = (*store)->url();
  manifest_url = (*store)->UrlOf("manifest.json");
  log.Line(fmt::format("upload: {} file(s) to {}", sources.size(), (*store)->Describe()));

  objects.resize(sources.size());
  auto upload_one = [&](size_t index) -> Status {
    if (io.cancelled()) return Fail("upload: cancelled");
    const UploadSource& source = sources[index];
    auto object = (*store)->PutFile(source.name, source.path, ContentType(source.name));
    if (!object) return Fail("upload: " + object.error());
    ManifestObject& out = objects[index];
    out.name = source.name;
    out.key = object->key;
    out.url = object->url;
    out.source = WorkspaceRelative(source.path, io.workspace());
    out.size = object->size;
    out.sha256 = object->sha256;
    out.etag = object->etag;
    out.parts = object->parts;
    log.Line(fmt::format("upload: {} -> {} ({}{})", out.source, out.url, HumanSize(out.size),
                         out.parts ? fmt::format(", {} parts", out.parts) : ""));
    return {};
  };
  // Small files many at a time; a large file at a time, its parts in parallel, so that at
  // most `concurrency` requests are in flight.
  std::vector<size_t> small;
  std::vector<size_t> large;
  for (size_t i = 0; i < sources.size(); ++i) {
    struct stat st;
    if (::stat(sources[i].path.c_str(), &st) != 0) {
      return Fail(fmt::format("upload: cannot read '{}': {}", sources[i].path, ErrnoText()));
    }
    (static_cast<std::uint64_t>(st.st_size) > options.part_size ? large : small).push_back(i);
  }
  if (Status done = ParallelFor(small.size(), options.concurrency,
                                [&](size_t i) { return upload_one(small[i]); });
      !done) {
    return done;
  }
  for (size_t index : large) {
    if (Status done = upload_one(index); !done) return done;
  }
  if (io.cancelled()) return Fail("upload: cancelled");

  Manifest manifest;
  manifest.build = ManifestBuildOf(io.build());
  manifest.url = url;
  manifest.created = NowIso8601();
  manifest.objects = objects;
  auto written = (*store)->Put("manifest.json", RenderManifest(manifest), "application/json");
  if (!written) return Fail("upload: " + written.error());
  log.Line(fmt::format("upload: manifest {}", manifest_url));
  return {};
}

Status ExecuteUpload(const Json& config, StepIo& io) {
  auto options = ParseOptions(config);
  if (!options) return Fail(options.error());
  auto sources = CollectUploadSources(options->files, io.dir());
  if (!sources) return Fail("upload: " + sources.error());
  std::vector<ManifestObject> objects;
  std::string url;
  std::string manifest_url;
  if (Status done = UploadToStore(*options, *sources, io, objects, url, manifest_url); !done) {
    return done;
  }
  io.SetOutput("url", url);
  io.SetOutput("manifest_url", manifest_url);
  for (const ManifestObject& object : objects) {
    io.AddArtifact(Artifact{object.source, object.size, object.sha256, object.url});
  }
  return {};
}

void ValidateUpload(const ConfigNode& config, Diagnostics& diags) {
  if (!ExpectMap(config, "upload", diags)) return;
  CheckKeys(config, kConfigKeys, "upload", diags);
  auto literal = [](const ConfigNode& node) { return !HasExpression(node.scalar.text); };
  if (const ConfigNode* to = Require(config, "to", "upload", diags)) {
    if (ExpectScalar(*to, "upload.to", diags) && literal(*to)) {
      if (Status ok = CheckTo(to->scalar.text); !ok) {
        diags.Error(to->where, "upload.to: " + ok.error());
      }
    }
  }
  if (const ConfigNode* files = Require(config, "files", "upload", diags)) {
    if (auto items = ExpectScalarOrList(*files, "upload.files", diags)) {
      if (items->empty()) diags.Error(files->where, "upload.files is empty: nothing to upload");
      for (const ConfigNode* item : *items) {
        if (item->scalar.text.empty()) diags.Error(item->where, "upload.files: an empty entry");
      }
    }
  }
  for (const char* key : {"region", "kms_key_id"}) {
    if (const ConfigNode* node = config.Find(key)) {
      ExpectScalar(*node, fmt::format("upload.{}", key), diags);
    }
  }
  if (const ConfigNode* endpoint = config.Find("endpoint")) {
    if (ExpectScalar(*endpoint, "upload.endpoint", diags) && literal(*endpoint) &&
        !endpoint->scalar.text.starts_with("http://") &&
        !endpoint->scalar.text.starts_with("https://")) {
      diags.Error(endpoint->where, "upload.endpoint must start with http:// or https://");
    }
  }
  if (const ConfigNode* style = config.Find("path_style")) {
    if (ExpectScalar(*style, "upload.path_style", diags) && literal(*style) &&
        !ParsePathStyle(style->scalar.text)) {
      diags.Error(style->where, fmt::format("upload.path_style '{}': use auto, true or false",
                                            style->scalar.text));
    }
  }
  std::optional<std::string> sse;
  if (const ConfigNode* node = config.Find("sse")) {
    if (ExpectScalar(*node, "upload.sse", diags) && literal(*node)) {
      sse = node->scalar.text;
      if (*sse != "AES256" && *sse != "aws:kms") {
        diags.Error(node->where, fmt::format("upload.sse '{}': use AES256 or aws:kms", *sse));
      }
    }
  } else {
    sse = "";
  }
  if (const ConfigNode* kms = config.Find("kms_key_id")) {
    if (sse && *sse != "aws:kms") {
      diags.Error(kms->where, "upload.kms_key_id needs 'sse: aws:kms'");
    }
  }
  if (const ConfigNode* size = config.Find("part_size")) {
    if (ExpectScalar(*size, "upload.part_size", diags) && literal(*size)) {
      if (Status ok = CheckPartSize(size->scalar.text); !ok) {
        diags.Error(size->where, "upload." + ok.error());
      }
    }
  }
  if (const ConfigNode* concurrency = config.Find("concurrency")) {
    ExpectInteger(*concurrency, "upload.concurrency", 1, kMaxConcurrency, diags);
  }
}

}  // namespace

const LegacyStepKind kUploadStep = {
    .name = "upload",
    // Time to abort multipart uploads after a cancel.
    .default_kill_grace = std::chrono::seconds(30),
    .validate = &ValidateUpload,
    .execute = &ExecuteUpload,
    // The credentials it signs with.
    .secret_env = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_CONTAINER_AUTHORIZATION_TOKEN"},
};

Result<std::uint64_t> ParseByteSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 12) {
    return Fail(fmt::format("'{}' is not a size (write e.g. 16MiB or 8388608)", text));
  }
  std::uint64_t number = std::stoull(std::string(text.substr(0, i)));
  std::string_view unit = text.substr(i);
  while (unit.starts_with(' ')) unit.remove_prefix(1);
  std::string lower;
  for (char c : unit) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t scale = 0;
  if (lower.empty() || lower == "b") {
    scale = 1;
  } else if (lower == "k" || lower == "kb" || lower == "kib") {
    scale = 1024;
  } else if (lower == "m" || lower == "mb" || lower == "mib") {
    scale = aws::kMiB;
  } else if (lower == "g" || lower == "gb" || lower == "gib") {
    scale = 1024 * aws::kMiB;
  } else {
    return Fail(fmt::format("'{}': unknown size unit '{}' (use B, KiB, MiB or GiB)", text, unit));
  }
  return number * scale;
}

Result<std::vector<UploadSource>> CollectUploadSources(const std::vector<std::string>& patterns,
                                                       const std::string& dir) {
  std::vector<UploadSource> sources;
  std::map<std::string, std::string> owner;  // name -> the entry that produced it
  auto add = [&](std::string path, std::string name, const std::string& entry) -> Status {
    if (name == "manifest.json") {
      return Fail(
          fmt::format("'{}' would be uploaded as manifest.json, which the step writes "
                      "itself: rename it or upload it from a directory",
                      entry));
    }
    auto [it, inserted] = owner.emplace(name, path);
    if (!inserted) {
      if (it->second == path) return {};  // listed twice: one object
      return Fail(
          fmt::format("two files would be uploaded as '{}': {} and {}", name, it->second, path));
    }
    sources.push_back({std::move(path), std::move(name)});
    return {};
  };
  for (const std::string& entry : patterns) {
    if (entry.empty()) return Fail("'files' has an empty entry");
    bool absolute = entry.starts_with('/');
    std::vector<std::string> parts = SplitPath(entry);
    for (const std::string& part : parts) {
      if (HasGlobSyntax(part) && part.find("..") != std::string::npos) {
        return Fail(fmt::format("'{}': a glob may not contain '..'", entry));
      }
    }
    size_t fixed = 0;
    while (fixed < parts.size() && !HasGlobSyntax(parts[fixed])) ++fixed;
    std::string base_rel = JoinPath(parts, 0, fixed);
    std::string base = absolute ? "/" + base_rel : (base_rel.empty() ? dir : dir + "/" + base_rel);
    base = fs::path(base).lexically_normal().string();
    while (base.size() > 1 && base.ends_with('/')) base.pop_back();

    if (fixed == parts.size()) {
      struct stat st;
      if (::stat(base.c_str(), &st) != 0) {
        return Fail(fmt::format("'{}' does not exist (in {})", entry, dir));
      }
      if (S_ISREG(st.st_mode)) {
        if (entry.ends_with('/')) return Fail(fmt::format("'{}' is not a directory", entry));
        if (Status ok = add(base, fs::path(base).filename().string(), entry); !ok)
          return Fail(ok.error());
        continue;
      }
      if (!S_ISDIR(st.st_mode)) {
        return Fail(fmt::format("'{}' is not a regular file or directory", entry));
      }
      std::vector<std::string> found;
      if (Status walked = WalkFiles(base, "", found); !walked) return Fail(walked.error());
      if (found.empty()) return Fail(fmt::format("directory '{}' holds no file", entry));
      for (const std::string& rel : found) {
        if (Status ok = add(base + "/" + rel, rel, entry); !ok) return Fail(ok.error());
      }
      continue;
    }

    // A glob: match what lies below its fixed prefix against the rest of the pattern.
    std::string rest = JoinPath(parts, fixed, parts.size());
    std::vector<std::string> found;
    struct stat st;
    if (::stat(base.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (Status walked = WalkFiles(base, "", found); !walked) return Fail(walked.error());
    }
    size_t matched = 0;
    for (const std::string& rel : found) {
      if (!GlobMatch(rest, rel)) continue;
      ++matched;
      if (Status ok = add(base + "/" + rel, rel, entry); !ok) return Fail(ok.error());
    }
    if (matched == 0) return Fail(fmt::format("'{}' matches no file (in {})", entry, dir));
  }
  return sources;
}

}  // namespace runner
