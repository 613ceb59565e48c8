#include "steps/codedeploy.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <locale.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>

#include "runner/lazy_library.h"
#include "runner/yaml_text.h"

namespace runner {

namespace {

// libarchive, loaded when the first revision is read rather than linked: only the CodeDeploy
// check reads a zip back, and the library cost 1.1 ms of every runner start linked. Its entry
// points, named as libarchive names them without `archive_`:
#define RUNNER_ARCHIVE_ENTRY_POINTS(X) \
  X(entry_filetype)                    \
  X(entry_pathname)                    \
  X(entry_pathname_utf8)               \
  X(entry_perm)                        \
  X(error_string)                      \
  X(read_data)                         \
  X(read_free)                         \
  X(read_new)                          \
  X(read_next_header)                  \
  X(read_open_filename)                \
  X(read_support_format_zip_seekable)

struct Libarchive {
#define RUNNER_ARCHIVE_ENTRY_POINT(name) decltype(&::archive_##name) name;
  RUNNER_ARCHIVE_ENTRY_POINTS(RUNNER_ARCHIVE_ENTRY_POINT)
#undef RUNNER_ARCHIVE_ENTRY_POINT
};

// libarchive's ABI has been soname 13 since 3.0 (2011).
constexpr const char* kLibarchive = "libarchive.so.13";

// Loaded once per process, also when it failed; safe from any thread.
Result<const Libarchive*> LoadLibarchive() {
  static const Result<Libarchive> library = LoadLazyLibrary<Libarchive>(
      kLibarchive, "libarchive13", [](SymbolBinder& binder, Libarchive& libarchive) {
#define RUNNER_ARCHIVE_BIND(name) binder.Bind(libarchive.name, "archive_" #name);
        RUNNER_ARCHIVE_ENTRY_POINTS(RUNNER_ARCHIVE_BIND)
#undef RUNNER_ARCHIVE_BIND
      });
  if (!library) return Fail(library.error());
  return &*library;
}

constexpr int kMaxEventSeconds = 3600;  // CodeDeploy's limit per script and per event
constexpr size_t kHeadBytes = 128;

// Unknown keys of a mapping are errors, with a did-you-mean.
void CheckKeys(const YamlNode& map, const std::vector<std::string>& allowed, std::string_view what,
               Diagnostics& diags) {
  for (const auto& [name, value] : map.fields) {
    if (!name.IsScalar()) {
      diags.Error(name.where, fmt::format("{}: keys must be plain names", what));
      continue;
    }
    const std::string& key = name.value;
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    diags.Error(name.where,
                fmt::format("unknown key '{}' in {}{}", key, what, DidYouMeanHint(key, allowed)));
  }
}

// A path inside the revision as appspec.yml writes it ("/scripts/a.sh", "./scripts/a.sh/", and
// on Windows "\\index.html" or ".\\dir": the agent accepts either separator).
std::string RevisionPath(std::string_view written) {
  std::string normal(written);
  std::replace(normal.begin(), normal.end(), '\\', '/');
  std::string_view path = normal;
  while (path.starts_with("./") || path.starts_with('/')) {
    path.remove_prefix(path.starts_with('/') ? 1 : 2);
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  return std::string(path);
}

// The agent reads appspec.yml with Ruby's YAML, where a duplicated key silently keeps the last
// value; the tree keeps both. Every repeated key of every mapping is an error.
void CheckDuplicateKeys(const YamlNode& node, Diagnostics& diags) {
  for (const YamlNode& item : node.items) CheckDuplicateKeys(item, diags);
  std::map<std::string, SourceLocation> seen;
  for (const auto& [key, value] : node.fields) {
    if (key.IsScalar()) {
      auto [first, inserted] = seen.try_emplace(key.value, key.where);
      if (!inserted) {
        diags.Error(key.where,
                    fmt::format("duplicated key '{}' (first at line {}): the CodeDeploy agent "
                                "keeps only the last one; remove one of them",
                                key.value, first->second.line));
      }
    }
    CheckDuplicateKeys(value, diags);
  }
}

// A plain scalar YAML 1.1 (the agent's Ruby) reads as an octal number: "0755", not "755" or
// "'0755'".
bool IsYamlOctal(const YamlNode& node) {
  const std::string& text = node.value;
  return node.plain && node.tag.empty() && text.size() > 1 && text[0] == '0' &&
         text.find_first_not_of("01234567") == std::string::npos;
}

bool HasFileOrDirectory(const RevisionListing& files, const std::string& path) {
  if (files.contains(path)) return true;
  auto it = files.lower_bound(path + "/");
  return it != files.end() && it->first.starts_with(path + "/");
}

void CheckFiles(const YamlNode& files, const Revision& revision, bool windows, Diagnostics& diags) {
  if (files.IsNull()) return;
  if (!files.IsList()) {
    diags.Error(files.where, "'files' must be a list of {source, destination}");
    return;
  }
  for (const YamlNode& item : files.items) {
    if (!item.IsMap()) {
      diags.Error(item.where, "each 'files' item must be a mapping with source and destination");
      continue;
    }
    // `overwrite` is read by older agents and ignored by newer ones: not a mistake.
    CheckKeys(item, {"source", "destination", "overwrite"}, "files", diags);
    const YamlNode* source = item.Find("source");
    if (!source || !source->IsScalar()) {
      diags.Error(item.where, "files item: missing 'source'");
    } else {
      std::string path = RevisionPath(source->value);
      bool present =
          path.empty() ? !revision.files.empty() : HasFileOrDirectory(revision.files, path);
      if (!present) {
        diags.Error(source->where,
                    fmt::format("files source '{}' is not in the archive", source->value));
      }
    }
    const YamlNode* destination = item.Find("destination");
    if (!destination || !destination->IsScalar()) {
      diags.Error(item.where, "files item: missing 'destination'");
    } else {
      const std::string& text = destination->value;
      bool absolute = windows
                          ? text.size() >= 3 && std::isalpha(static_cast<unsigned char>(text[0])) &&
                                text[1] == ':' && (text[2] == '\\' || text[2] == '/')
                          : text.starts_with('/');
      if (!absolute) {
        diags.Error(destination->where,
                    fmt::format("files destination '{}' must be an absolute path", text));
      }
    }
  }
}

// `mode` as the agent's ModeInfo reads it: the text of the YAML value, padded to 3 digits,
// at most 4 octal digits.
void CheckMode(const YamlNode& mode, Diagnostics& diags) {
  if (!mode.IsScalar()) {
    diags.Error(mode.where, "permissions mode must be octal digits such as 755");
    return;
  }
  std::string text = mode.value;
  if (IsYamlOctal(mode)) {
    std::string decimal = std::to_string(std::stoll(text, nullptr, 8));
    std::string digits = text.substr(std::min(text.find_first_not_of('0'), text.size() - 1));
    bool rejected = decimal.find_first_of("89") != std::string::npos;
    diags.Error(
        mode.where,
        fmt::format("permissions mode {} is an octal number in YAML: the agent reads it "
                    "as {} and {}; write 'mode: {}'",
                    text, decimal, rejected ? "rejects it" : "applies that mode instead", digits));
    return;
  }
  if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos) {
    diags.Error(mode.where, fmt::format("permissions mode '{}' must be 1 to 4 octal digits such "
                                        "as 755",
                                        text));
  }
}

void CheckPermissionTypes(const YamlNode& type, Diagnostics& diags) {
  if (!type.IsList()) {
    diags.Error(type.where, "permissions type must be a list of file and directory");
    return;
  }
  for (const YamlNode& item : type.items) {
    std::string text = item.IsScalar() ? item.value : "a collection";
    if (text != "file" && text != "directory") {
      diags.Error(item.where,
                  fmt::format("permissions type '{}' is not supported: the agent sets permissions "
                              "on file and directory only{}",
                              text, DidYouMeanHint(text, {"file", "directory"})));
    }
  }
}

void CheckPermissions(const YamlNode& permissions, bool windows, Diagnostics& diags) {
  if (permissions.IsNull()) return;
  if (windows) {
    diags.Error(permissions.where,
                "'permissions' are not supported on windows: the agent rejects them; set them "
                "in a hook script");
    return;
  }
  if (!permissions.IsList()) {
    diags.Error(permissions.where, "'permissions' must be a list");
    return;
  }
  for (const YamlNode& item : permissions.items) {
    if (!item.IsMap()) {
      diags.Error(item.where, "each 'permissions' item must be a mapping");
      continue;
    }
    CheckKeys(item,
              {"object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type"},
              "permissions", diags);
    if (!item.Find("object")) diags.Error(item.where, "permissions item: missing 'object'");
    if (const YamlNode* mode = item.Find("mode")) CheckMode(*mode, diags);
    if (const YamlNode* type = item.Find("type")) CheckPermissionTypes(*type, diags);
  }
}

void CheckScript(const YamlNode& script, const std::string& event, const Revision& revision,
                 bool is_linux, int& total, Diagnostics& diags) {
  if (!script.IsMap()) {
    diags.Error(script.where, fmt::format("hook '{}': each script must be a mapping with a "
                                          "location",
                                          event));
    return;
  }
  CheckKeys(script, {"location", "timeout", "runas", "sudo"}, "hook '" + event + "'", diags);
  // A script without a timeout adds nothing to the event's total: CodeDeploy's limit is on
  // the timeouts written, not on its default for a script that gives none.
  int timeout = 0;
  if (const YamlNode* node = script.Find("timeout")) {
    int value = 0;
    std::string text = node->IsScalar() ? node->value : "";
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < 1 ||
        value > kMaxEventSeconds) {
      diags.Error(node->where, fmt::format("hook '{}': timeout must be a whole number of seconds "
                                           "from 1 to {}, got '{}'",
                                           event, kMaxEventSeconds, text));
    } else {
      timeout = value;
    }
  }
  total += timeout;
  const YamlNode* location = script.Find("location");
  if (!location || !location->IsScalar() || location->value.empty()) {
    diags.Error(script.where, fmt::format("hook '{}': script without a 'location'", event));
    return;
  }
  std::string path = RevisionPath(location->value);
  auto it = revision.files.find(path);
  if (it == revision.files.end() || it->second.directory) {
    diags.Error(location->where,
                fmt::format("hook script '{}' is not in the archive", location->value));
    return;
  }
  if (!is_linux) return;
  const RevisionFile& file = it->second;
  if (!file.executable) {
    diags.Warning(location->where,
                  fmt::format("hook script '{}' is not executable: CodeDeploy runs it directly "
                              "(chmod +x it in the source tree)",
                              path));
  }
  if (!file.head.starts_with("#!")) {
    diags.Warning(location->where,
                  fmt::format("hook script '{}' has no '#!' line: the agent cannot tell which "
                              "interpreter runs it",
                              path));
  } else {
    std::string_view first_line = std::string_view(file.head).substr(0, file.head.find('\n'));
    if (first_line.ends_with('\r')) {
      diags.Warning(location->where,
                    fmt::format("hook script '{}' has Windows line endings: its '#!' line ends "
                                "in a carriage return",
                                path));
    }
  }
}

void CheckHooks(const YamlNode& hooks, const Revision& revision, bool is_linux,
                Diagnostics& diags) {
  if (hooks.IsNull()) return;
  if (!hooks.IsMap()) {
    diags.Error(hooks.where, "'hooks' must map lifecycle events to lists of scripts");
    return;
  }
  const std::vector<std::string>& events = LifecycleEvents();
  for (const auto& [key, scripts] : hooks.fields) {
    std::string event = key.IsScalar() ? key.value : "";
    SourceLocation where = key.where;
    if (std::find(events.begin(), events.end(), event) == events.end()) {
      diags.Error(where, fmt::format("hook '{}' is not a lifecycle event{}", event,
                                     DidYouMeanHint(event, events)));
      continue;
    }
    if (event == "DownloadBundle" || event == "Install") {
      diags.Error(where, fmt::format("hook '{}' is reserved for the CodeDeploy agent and cannot "
                                     "run scripts (use BeforeInstall or AfterInstall)",
                                     event));
      continue;
    }
    if (scripts.IsNull()) continue;  // an empty hook: the agent ignores it
    if (!scripts.IsList()) {
      diags.Error(scripts.where,
                  fmt::format("hook '{}' must be a list of scripts ({{location, timeout, "
                              "runas}})",
                              event));
      continue;
    }
    int total = 0;
    for (const YamlNode& script : scripts.items)
      CheckScript(script, event, revision, is_linux, total, diags);
    if (total > kMaxEventSeconds) {
      diags.Error(where,
                  fmt::format("hook '{}': its scripts' timeouts add up to {} s, more than the "
                              "{} s CodeDeploy allows per event",
                              event, total, kMaxEventSeconds));
    }
  }
}

// libarchive converts entry names to the current locale's charset; under the "C" locale
// (usual in CI) a UTF-8 name then cannot be had at all. This thread reads with a UTF-8
// LC_CTYPE while the object lives.
class ScopedUtf8Locale {
 public:
  ScopedUtf8Locale() {
    utf8_ = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (utf8_ != static_cast<locale_t>(0)) previous_ = ::uselocale(utf8_);
  }
  ~ScopedUtf8Locale() {
    if (utf8_ == static_cast<locale_t>(0)) return;
    ::uselocale(previous_);
    ::freelocale(utf8_);
  }
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;

 private:
  locale_t utf8_ = static_cast<locale_t>(0);
  locale_t previous_ = static_cast<locale_t>(0);
};

}  // namespace

const std::vector<std::string>& LifecycleEvents() {
  static const std::vector<std::string> events = {
      "ApplicationStop",   "DownloadBundle",     "BeforeInstall",     "Install",
      "AfterInstall",      "ApplicationStart",   "ValidateService",   "BeforeBlockTraffic",
      "AfterBlockTraffic", "BeforeAllowTraffic", "AfterAllowTraffic",
  };
  return events;
}

Result<Revision> ReadRevision(const std::string& zip_path) {
  Result<const Libarchive*> loaded = LoadLibarchive();
  if (!loaded) return Fail(fmt::format("cannot read {}: {}", zip_path, loaded.error()));
  const Libarchive& libarchive = **loaded;
  ScopedUtf8Locale utf8;
  std::unique_ptr<archive, int (*)(archive*)> reader(libarchive.read_new(), libarchive.read_free);
  libarchive.read_support_format_zip_seekable(reader.get());
  if (libarchive.read_open_filename(reader.get(), zip_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Fail(fmt::format("cannot read {}: {}", zip_path, libarchive.error_string(reader.get())));
  }
  Revision revision;
  archive_entry* entry = nullptr;
  int rc;
  // ARCHIVE_WARN: a UTF-8 name that the current locale (often "C" in CI) cannot show. The
  // UTF-8 name itself is still there.
  while ((rc = libarchive.read_next_header(reader.get(), &entry)) == ARCHIVE_OK ||
         rc == ARCHIVE_WARN) {
    const char* name = libarchive.entry_pathname_utf8(entry);
    if (name == nullptr) name = libarchive.entry_pathname(entry);
    std::string path = RevisionPath(name ? name : "");
    RevisionFile file;
    file.directory = libarchive.entry_filetype(entry) == AE_IFDIR;
    file.executable = (libarchive.entry_perm(entry) & 0111) != 0;
    if (!file.directory) {
      bool appspec = path == "appspec.yml";
      std::string data;
      char buffer[1 << 14];
      while (appspec || data.size() < kHeadBytes) {
        la_ssize_t n = libarchive.read_data(reader.get(), buffer, sizeof(buffer));
        if (n < 0) {
          return Fail(fmt::format("cannot read {} from {}: {}", path, zip_path,
                                  libarchive.error_string(reader.get())));
        }
        if (n == 0) break;
        data.append(buffer, static_cast<size_t>(n));
      }
      if (appspec) {
        revision.has_appspec = true;
        revision.appspec = data;
      }
      file.head = data.substr(0, kHeadBytes);
    }
    revision.files[path] = std::move(file);
  }
  if (rc != ARCHIVE_EOF) {
    return Fail(fmt::format("cannot read {}: {}", zip_path, libarchive.error_string(reader.get())));
  }
  return revision;
}

void ValidateAppSpec(const Revision& revision, Diagnostics& diags) {
  if (!revision.has_appspec) {
    std::string hint;
    for (const auto& [path, file] : revision.files) {
      if (path.ends_with("appspec.yml") || path.ends_with("appspec.yaml")) {
        hint = fmt::format(" (found '{}': map it to dest appspec.yml)", path);
        break;
      }
    }
    diags.Error({}, "the archive has no appspec.yml at its root" + hint);
    return;
  }
  auto documents = LoadYaml(revision.appspec, "appspec.yml");
  if (!documents) {
    diags.Error(documents.error().where, documents.error().message);
    return;
  }
  if (documents->empty() || !documents->front().IsMap()) {
    diags.Error(documents->empty() ? SourceLocation{} : documents->front().where,
                "appspec.yml must be a mapping with version, os, files and hooks");
    return;
  }
  const YamlNode& root = documents->front();
  for (const auto& [name, value] : root.fields) {
    std::string key = name.IsScalar() ? name.value : "";
    if (key != "Resources" && key != "resources") continue;
    diags.Error(name.where,
                fmt::format("this is not an EC2/on-premises appspec: '{}' makes it an ECS or "
                            "Lambda one, which CodeDeploy reads from the deployment, not from "
                            "a revision archive; a zip revision has version, os, files and "
                            "hooks",
                            key));
    return;
  }
  CheckDuplicateKeys(root, diags);
  CheckKeys(root, {"version", "os", "files", "permissions", "hooks", "file_exists_behavior"},
            "appspec.yml", diags);
  const YamlNode* version = root.Find("version");
  if (!version) {
    diags.Error({1, 1}, "missing 'version: 0.0'");
  } else if (!version->IsScalar() || version->value != "0.0") {
    diags.Error(version->where, fmt::format("'version' must be 0.0, got '{}'",
                                            version->IsScalar() ? version->value : "a collection"));
  } else if (!version->plain || !version->tag.empty()) {
    diags.Error(version->where,
                "'version' must be the number 0.0, not a quoted string: the agent compares "
                "it as a number and rejects \"0.0\"");
  }
  const YamlNode* os = root.Find("os");
  bool is_linux = true;
  if (!os) {
    diags.Error({1, 1}, "missing 'os' (linux or windows)");
  } else if (!os->IsScalar() || (os->value != "linux" && os->value != "windows")) {
    std::string text = os->IsScalar() ? os->value : "a collection";
    diags.Error(os->where, fmt::format("'os' must be linux or windows, got '{}'{}", text,
                                       DidYouMeanHint(text, {"linux", "windows"})));
  } else {
    is_linux = os->value == "linux";
  }
  if (const YamlNode* behavior = root.Find("file_exists_behavior")) {
    std::string text = behavior->IsScalar() ? behavior->value : "";
    if (text != "DISALLOW" && text != "OVERWRITE" && text != "RETAIN") {
      diags.Error(behavior->where,
                  fmt::format("'file_exists_behavior' must be DISALLOW, OVERWRITE or RETAIN, "
                              "got '{}'",
                              text));
    }
  }
  if (const YamlNode* files = root.Find("files")) CheckFiles(*files, revision, !is_linux, diags);
  if (const YamlNode* permissions = root.Find("permissions")) {
    CheckPermissions(*permissions, !is_linux, diags);
  }
  if (const YamlNode* hooks = root.Find("hooks")) CheckHooks(*hooks, revision, is_linux, diags);
}

}  // namespace runner
