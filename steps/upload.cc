#include "steps/upload.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

#include "runner/aws/s3_client.h"
#include "runner/config_node.h"
#include "runner/file_select.h"
#include "runner/fs.h"
#include "runner/glob.h"
#include "runner/path.h"
#include "runner/progress.h"
#include "runner/store/artifact_store.h"
#include "runner/store/manifest.h"
#include "runner/worker_pool.h"
#include "runner/workspace_path.h"
#include "steps/packer.h"

namespace runner {

namespace {

const std::vector<std::string> kConfigKeys = {"to",          "files", "region",     "endpoint",
                                              "path_style",  "sse",   "kms_key_id", "part_size",
                                              "concurrency", "amis"};
constexpr int kMaxConcurrency = 64;

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

std::string NowIso8601() {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", now);
}

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

// Runs `work(i)` for each of `indexes` on up to `threads` threads; drops the work not yet
// started after the first failure, which it returns.
Status ParallelFor(const std::vector<size_t>& indexes, int threads,
                   const std::function<Status(size_t)>& work) {
  std::mutex mutex;
  std::optional<std::string> first_error;
  {
    size_t workers =
        std::max<size_t>(1, std::min<size_t>(indexes.size(), static_cast<size_t>(threads)));
    WorkerPool pool(workers, workers);
    std::vector<std::future<void>> done;
    for (size_t index : indexes) {
      done.push_back(pool.Submit([&, index] {
        Status status = work(index);
        if (status) return;
        std::lock_guard lock(mutex);
        if (!first_error) first_error = status.error();
        pool.Cancel();
      }));
    }
    // Destroying the pool would drop the work still queued.
    for (const std::future<void>& item : done) item.wait();
  }
  if (first_error) return Fail(*first_error);
  return {};
}

// The refusal of a prefix another build was published to; `what_happened` to this build's files.
std::string AlreadyPublished(const std::string& manifest_url, std::string_view what_happened) {
  return fmt::format(
      "upload: {} already exists: a build was published under this prefix, and every build is "
      "kept as it was ({}). Publish each build under its own prefix, e.g. with "
      "${{{{ build.id }}}} in 'to'",
      manifest_url, what_happened);
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
  // Bytes of whole files stored, and of the parts of the large file in flight.
  std::atomic<std::uint64_t> files_sent{0};
  std::atomic<std::uint64_t> parts_sent{0};
  std::uint64_t total_bytes = 0;
  auto report = [&] {
    io.ReportProgress(Progress{"sent", files_sent.load() + parts_sent.load(), total_bytes});
  };
  store_options.part_sent = [&](std::uint64_t bytes) {
    parts_sent += bytes;
    report();
  };
  auto store = OpenArtifactStore(options.to, std::move(store_options));
  if (!store) return Fail("upload: " + store.error());
  url = (*store)->url();
  manifest_url = (*store)->UrlOf("manifest.json");
  log.Line(fmt::format("upload: {} file(s) to {}", sources.size(), (*store)->Describe()));
  // Checked before any object is sent, so a second build cannot overwrite the first's files;
  // PutIfAbsent below catches a build that wins the race in between.
  auto published = (*store)->Stat("manifest.json");
  if (!published) return Fail("upload: " + published.error());
  if (*published) return Fail(AlreadyPublished(manifest_url, "nothing was uploaded"));

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
    out.source = source.source;
    out.size = object->size;
    out.sha256 = object->sha256;
    out.etag = object->etag;
    out.parts = object->parts;
    out.version_id = object->version_id;
    parts_sent = 0;
    files_sent += out.size;
    report();
    log.Line(fmt::format("upload: {} -> {} ({}{})", out.source, out.url, HumanBytes(out.size),
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
      return Fail(fmt::format("upload: cannot read '{}': {}", sources[i].path, ErrnoText(errno)));
    }
    (static_cast<std::uint64_t>(st.st_size) > options.part_size ? large : small).push_back(i);
    total_bytes += static_cast<std::uint64_t>(st.st_size);
  }
  report();
  if (Status done = ParallelFor(small, options.concurrency, upload_one); !done) return done;
  for (size_t index : large) {
    if (Status done = upload_one(index); !done) return done;
  }
  if (io.cancelled()) return Fail("upload: cancelled");

  Manifest manifest;
  manifest.build = ManifestBuildOf(io.build());
  manifest.url = url;
  manifest.created = NowIso8601();
  manifest.objects = objects;
  manifest.amis = options.amis;
  auto written =
      (*store)->PutIfAbsent("manifest.json", RenderManifest(manifest), "application/json");
  if (!written) return Fail("upload: " + written.error());
  if (!*written) {
    return Fail(AlreadyPublished(manifest_url,
                                 "another build published there while this one uploaded; its "
                                 "manifest was kept and none was written for this build"));
  }
  log.Line(fmt::format("upload: manifest {}", manifest_url));
  return {};
}

}  // namespace

std::vector<std::string> UploadKind::secret_env() const {
  return {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"};
}

UploadOptions UploadKind::Parse(const ConfigNode& config, Diagnostics& diags) const {
  UploadOptions options;
  if (!ExpectMap(config, "upload", diags)) return options;
  CheckKeys(config, kConfigKeys, "upload", diags);
  // A scalar whose value is known (literal or expanded), else nullptr; reports a wrong type.
  auto known = [&](const char* key) -> const ConfigNode* {
    const ConfigNode* node = config.Find(key);
    if (node == nullptr || !ExpectScalar(*node, fmt::format("upload.{}", key), diags)) {
      return nullptr;
    }
    return IsKnown(*node) ? node : nullptr;
  };
  if (Require(config, "to", "upload", diags) != nullptr) {
    if (const ConfigNode* to = known("to")) {
      options.to = to->scalar.text;
      if (Status ok = CheckTo(options.to); !ok) diags.Error(to->where, "upload.to: " + ok.error());
    }
  }
  if (const ConfigNode* files = Require(config, "files", "upload", diags)) {
    if (auto items = ExpectScalarOrList(*files, "upload.files", diags)) {
      if (items->empty()) diags.Error(files->where, "upload.files is empty: nothing to upload");
      for (const ConfigNode* item : *items) {
        if (!IsKnown(*item)) continue;
        if (item->scalar.text.empty()) diags.Error(item->where, "upload.files: an empty entry");
        options.files.push_back(item->scalar.text);
      }
    }
  }
  if (const ConfigNode* region = known("region")) options.region = region->scalar.text;
  if (const ConfigNode* endpoint = known("endpoint")) {
    options.endpoint = endpoint->scalar.text;
    if (!options.endpoint.starts_with("http://") && !options.endpoint.starts_with("https://")) {
      diags.Error(endpoint->where, "upload.endpoint must start with http:// or https://");
    }
  }
  if (const ConfigNode* style = known("path_style")) {
    if (auto parsed = ParsePathStyle(style->scalar.text)) {
      options.path_style = *parsed;
    } else {
      diags.Error(style->where, fmt::format("upload.path_style '{}': use auto, true or false",
                                            style->scalar.text));
    }
  }
  // Whether `sse` is known: kms_key_id is checked against it only then.
  bool sse_known = config.Find("sse") == nullptr;
  if (const ConfigNode* sse = known("sse")) {
    sse_known = true;
    options.sse = sse->scalar.text;
    if (options.sse != "AES256" && options.sse != "aws:kms") {
      diags.Error(sse->where, fmt::format("upload.sse '{}': use AES256 or aws:kms", options.sse));
    }
  }
  if (const ConfigNode* kms = config.Find("kms_key_id")) {
    if (sse_known && options.sse != "aws:kms") {
      diags.Error(kms->where, "upload.kms_key_id needs 'sse: aws:kms'");
    }
    if (known("kms_key_id") != nullptr) options.kms_key_id = kms->scalar.text;
  }
  if (const ConfigNode* size = known("part_size")) {
    if (Status ok = CheckPartSize(size->scalar.text); !ok) {
      diags.Error(size->where, "upload." + ok.error());
    } else {
      options.part_size = *ParseByteSize(size->scalar.text);
    }
  }
  if (const ConfigNode* concurrency = config.Find("concurrency")) {
    if (auto value = ExpectInteger(*concurrency, "upload.concurrency", 1, kMaxConcurrency, diags)) {
      options.concurrency = static_cast<int>(*value);
    }
  }
  if (const ConfigNode* amis = known("amis")) {
    auto pairs = ParseAmiList(amis->scalar.text);
    if (!pairs) {
      diags.Error(amis->where,
                  fmt::format("upload.amis '{}' is not a list of REGION:AMI pairs: give the "
                              "bake's `${{{{ steps.ID.outputs.artifact_id }}}}`",
                              amis->scalar.text));
    } else {
      for (const auto& [region, ami] : *pairs) {
        auto same =
            std::ranges::find(options.amis, region, &std::pair<std::string, std::string>::first);
        if (same == options.amis.end()) {
          options.amis.emplace_back(region, ami);
        } else if (same->second != ami) {
          diags.Error(amis->where, fmt::format("upload.amis names two AMIs for {}: {} and {}",
                                               region, same->second, ami));
        }
      }
    }
  }
  return options;
}

Status UploadKind::Run(const UploadOptions& options, StepIo& io) const {
  auto sources = CollectUploadSources(options.files, io.dir(), io.workspace());
  if (!sources) return Fail("upload: " + sources.error());
  std::vector<ManifestObject> objects;
  std::string url;
  std::string manifest_url;
  if (Status done = UploadToStore(options, *sources, io, objects, url, manifest_url); !done) {
    return done;
  }
  io.SetOutput("url", url);
  io.SetOutput("manifest_url", manifest_url);
  for (const ManifestObject& object : objects) {
    io.AddArtifact(Artifact{object.source, object.size, object.sha256, object.url});
  }
  return {};
}

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
  // 12 digits of GiB would wrap around in 64 bits and come out as a small, valid size.
  if (number > std::numeric_limits<std::uint64_t>::max() / scale) {
    return Fail(fmt::format("'{}' is too large to be a size", text));
  }
  return number * scale;
}

Result<std::vector<UploadSource>> CollectUploadSources(const std::vector<std::string>& patterns,
                                                       const std::string& dir,
                                                       const std::string& workspace) {
  std::vector<UploadSource> sources;
  std::map<std::string, std::string> owner;  // name -> the file uploaded under it
  for (const std::string& entry : patterns) {
    for (const std::string& part : SplitPath(entry)) {
      if (HasGlobSyntax(part) && part.find("..") != std::string::npos) {
        return Fail(fmt::format("'{}': a glob may not contain '..'", entry));
      }
    }
    auto files = SelectFiles(entry, dir, workspace);
    if (!files) return Fail(files.error());
    for (const SelectedFile& file : *files) {
      if (file.relative == "manifest.json") {
        return Fail(
            fmt::format("'{}' would be uploaded as manifest.json, which the step writes "
                        "itself: rename it or upload it from a directory",
                        entry));
      }
      auto [it, inserted] = owner.emplace(file.relative, file.path);
      if (!inserted) {
        if (it->second == file.path) continue;  // listed twice: one object
        return Fail(fmt::format("two files would be uploaded as '{}': {} and {}", file.relative,
                                it->second, file.path));
      }
      sources.push_back(
          {file.path, file.relative, WorkspaceRelative(dir + "/" + file.source, workspace)});
    }
  }
  return sources;
}

}  // namespace runner
