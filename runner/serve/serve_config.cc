#include "runner/serve/serve_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "runner/diagnostics.h"
#include "runner/fs.h"
#include "runner/yaml_text.h"

namespace runner::serve {

namespace {

constexpr size_t kMaxConfigBytes = size_t{1} << 20;

const std::vector<std::string> kTopKeys = {
    "listen",          "url",         "repos", "jobs",    "state_dir",          "github_api",
    "admin_token_env", "stop_grace",  "queue", "records", "visibility_timeout", "poll_wait",
    "log_interval",    "max_receives"};
const std::vector<std::string> kRepoKeys = {"name",       "clone_url", "pipeline",      "project",
                                            "secret_env", "token_env", "cancel_running"};

// Reads one file's YAML tree into a ServeConfig, reporting every problem to `diags`.
class ConfigReader {
 public:
  // `queue_given`: --queue set config.queue, which the file's `queue:` does not replace.
  ConfigReader(Diagnostics& diags, const Environment& environment, bool queue_given)
      : diags_(diags), environment_(environment), queue_given_(queue_given) {}

  void Read(const YamlNode& root, ServeConfig& config) {
    if (root.type != YamlNode::Type::kMap) {
      diags_.Error(root.where, "the server configuration must be a map of settings");
      return;
    }
    for (const auto& [key, value] : root.fields) {
      const std::string& name = key.value;
      if (name == "listen") {
        Scalar(value, "listen", config.listen);
      } else if (name == "url") {
        Scalar(value, "url", config.url);
      } else if (name == "state_dir") {
        Scalar(value, "state_dir", config.state_dir);
      } else if (name == "github_api") {
        Scalar(value, "github_api", config.github_api);
      } else if (name == "admin_token_env") {
        if (Scalar(value, "admin_token_env", config.admin_token_env)) {
          config.admin_token = Secret(value, "admin_token_env", config.admin_token_env);
        }
      } else if (name == "jobs") {
        Count(value, "jobs", 256, config.jobs);
      } else if (name == "max_receives") {
        Count(value, "max_receives", 1000, config.max_receives);
      } else if (name == "stop_grace") {
        DurationValue(value, "stop_grace", {}, {}, config.stop_grace);
      } else if (name == "visibility_timeout") {
        // SQS's range, and at least 3 s for a heartbeat every third of it.
        DurationValue(value, "visibility_timeout", std::chrono::seconds(3), std::chrono::hours(12),
                      config.visibility_timeout);
      } else if (name == "poll_wait") {
        // SQS's longest long poll.
        DurationValue(value, "poll_wait", std::chrono::seconds(1), std::chrono::seconds(20),
                      config.poll_wait);
      } else if (name == "log_interval") {
        DurationValue(value, "log_interval", std::chrono::milliseconds(100),
                      std::chrono::minutes(1), config.log_interval);
      } else if (name == "queue") {
        std::string file_queue;
        if (Scalar(value, "queue", file_queue) && !queue_given_) config.queue = file_queue;
      } else if (name == "records") {
        Scalar(value, "records", config.records);
      } else if (name == "repos") {
        Repos(value, config);
      } else {
        diags_.Error(key.where, fmt::format("unknown key '{}' in the server configuration{}", name,
                                            DidYouMeanHint(name, kTopKeys)));
      }
    }
    if (config.repos.empty() && !diags_.HasErrors()) {
      diags_.Error(root.where, "repos: at least one repository is needed");
    }
    CheckListen(root, config);
    CheckMachines(root, config);
    if (config.url.empty()) config.url = "http://" + config.listen;
    while (config.url.size() > 1 && config.url.back() == '/') config.url.pop_back();
    while (config.github_api.size() > 1 && config.github_api.back() == '/') {
      config.github_api.pop_back();
    }
  }

 private:
  bool Scalar(const YamlNode& node, std::string_view what, std::string& out) {
    if (!node.IsScalar()) {
      diags_.Error(node.where, fmt::format("{}: expected a string", what));
      return false;
    }
    out = node.value;
    return true;
  }

  // The value of the variable `name`; an error at `node` when it is unset or empty.
  std::string Secret(const YamlNode& node, std::string_view what, const std::string& name) {
    std::optional<std::string> value = Lookup(environment_, name);
    if (!value || value->empty()) {
      diags_.Error(node.where, fmt::format("{}: the variable {} is not set", what, name));
      return "";
    }
    return *value;
  }

  void Repos(const YamlNode& node, ServeConfig& config) {
    if (node.type != YamlNode::Type::kList) {
      diags_.Error(node.where, "repos: expected a list of repositories");
      return;
    }
    for (size_t i = 0; i < node.items.size(); ++i) {
      const YamlNode& item = node.items[i];
      std::string where = fmt::format("repos[{}]", i);
      if (item.type != YamlNode::Type::kMap) {
        diags_.Error(item.where, fmt::format("{}: expected a map", where));
        continue;
      }
      RepoConfig repo;
      const YamlNode* secret_node = nullptr;
      for (const auto& [key, value] : item.fields) {
        const std::string& name = key.value;
        std::string what = where + "." + name;
        if (name == "name") {
          Scalar(value, what, repo.name);
        } else if (name == "clone_url") {
          Scalar(value, what, repo.clone_url);
        } else if (name == "pipeline") {
          if (Scalar(value, what, repo.pipeline)) CheckRelative(value, what, repo.pipeline);
        } else if (name == "project") {
          Scalar(value, what, repo.project);
        } else if (name == "secret_env") {
          if (Scalar(value, what, repo.secret_env)) secret_node = &value;
        } else if (name == "token_env") {
          if (Scalar(value, what, repo.token_env)) {
            repo.token = Secret(value, what, repo.token_env);
          }
        } else if (name == "cancel_running") {
          Globs(value, what, repo.cancel_running);
        } else {
          diags_.Error(key.where, fmt::format("unknown key '{}' in {}{}", name, where,
                                              DidYouMeanHint(name, kRepoKeys)));
        }
      }
      if (repo.name.empty() || std::ranges::count(repo.name, '/') != 1 ||
          repo.name.front() == '/' || repo.name.back() == '/') {
        diags_.Error(
            item.where,
            fmt::format("{}.name: expected the repository's full name, OWNER/NAME", where));
      } else if (config.FindRepo(repo.name)) {
        diags_.Error(item.where, fmt::format("{}.name: {} is configured twice", where, repo.name));
      }
      if (repo.clone_url.empty()) {
        diags_.Error(item.where, fmt::format("{}: missing 'clone_url'", where));
      }
      if (repo.secret_env.empty()) {
        diags_.Error(item.where,
                     fmt::format("{}: missing 'secret_env' (the variable that holds the webhook "
                                 "secret): unsigned deliveries are never accepted",
                                 where));
      } else {
        repo.secret = Secret(*secret_node, where + ".secret_env", repo.secret_env);
      }
      if (repo.project.empty()) repo.project = repo.name.substr(repo.name.find('/') + 1);
      config.repos.push_back(std::move(repo));
    }
  }

  void CheckRelative(const YamlNode& node, std::string_view what, const std::string& path) {
    std::filesystem::path p(path);
    bool escapes = std::ranges::any_of(p, [](const auto& part) { return part == ".."; });
    if (path.empty() || p.is_absolute() || escapes) {
      diags_.Error(node.where,
                   fmt::format("{}: expected a path inside the repository, got '{}'", what, path));
    }
  }

  void Globs(const YamlNode& node, std::string_view what, std::vector<std::string>& out) {
    if (node.IsScalar()) {
      out.push_back(node.value);
      return;
    }
    if (node.type != YamlNode::Type::kList) {
      diags_.Error(node.where, fmt::format("{}: expected a branch glob or a list of them", what));
      return;
    }
    for (const YamlNode& item : node.items) {
      if (!item.IsScalar()) {
        diags_.Error(item.where, fmt::format("{}: expected a branch glob", what));
        continue;
      }
      out.push_back(item.value);
    }
  }

  // A whole number from 1 to `max`.
  void Count(const YamlNode& value, std::string_view what, int max, int& out) {
    std::string text;
    if (!Scalar(value, what, text)) return;
    int number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc() || end != text.data() + text.size() || number < 1 || number > max) {
      diags_.Error(value.where, fmt::format("{}: expected a whole number from 1 to {}, got '{}'",
                                            what, max, text));
    } else {
      out = number;
    }
  }

  // A duration; from `min` to `max` unless both are zero.
  void DurationValue(const YamlNode& value, std::string_view what, Duration min, Duration max,
                     Duration& out) {
    std::string text;
    if (!Scalar(value, what, text)) return;
    auto duration = ParseDuration(text);
    if (!duration) {
      diags_.Error(value.where, fmt::format("{}: {}", what, duration.error()));
    } else if (max.count() > 0 && (*duration < min || *duration > max)) {
      diags_.Error(value.where, fmt::format("{}: expected from {} to {}, got '{}'", what,
                                            FormatDuration(min), FormatDuration(max), text));
    } else {
      out = *duration;
    }
  }

  void CheckMachines(const YamlNode& root, const ServeConfig& config) {
    if (!config.queue.empty() && config.records.empty()) {
      diags_.Error(root.where,
                   "queue: needs 'records' too (s3://bucket/prefix/ or file:///dir/), where the "
                   "workers keep the records, logs and build numbers that serve shows");
    }
  }

  void CheckListen(const YamlNode& root, const ServeConfig& config) {
    size_t colon = config.listen.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < config.listen.size() &&
              config.listen.find_first_not_of("0123456789", colon + 1) == std::string::npos;
    if (!ok) {
      diags_.Error(root.where, fmt::format("listen: expected HOST:PORT, got '{}'", config.listen));
    }
  }

  Diagnostics& diags_;
  const Environment& environment_;
  const bool queue_given_;
};

}  // namespace

const RepoConfig* ServeConfig::FindRepo(std::string_view name) const {
  for (const RepoConfig& repo : repos) {
    if (repo.name == name) return &repo;
  }
  return nullptr;
}

std::expected<ServeConfig, std::string> LoadServeConfig(const std::string& file,
                                                        const Environment& environment,
                                                        const std::string& queue) {
  auto source = ReadFileAtMost(file, kMaxConfigBytes + 1);
  if (!source) {
    Diagnostics unreadable(file, "");
    unreadable.Error({}, source.error());
    return std::unexpected(unreadable.Format());
  }
  Diagnostics diags(file, *source);
  if (source->size() > kMaxConfigBytes) {
    diags.Error({}, "the configuration is larger than 1 MiB");
    return std::unexpected(diags.Format());
  }
  auto documents = LoadYaml(*source, "a server configuration");
  if (!documents) {
    diags.Error(documents.error().where, documents.error().message);
    return std::unexpected(diags.Format());
  }
  if (documents->size() != 1) {
    diags.Error({}, "expected exactly one YAML document");
    return std::unexpected(diags.Format());
  }
  ServeConfig config;
  config.file = file;
  config.queue = queue;
  ConfigReader(diags, environment, !queue.empty()).Read(documents->front(), config);
  if (diags.HasErrors()) return std::unexpected(diags.Format());
  std::error_code ec;
  config.state_dir = std::filesystem::absolute(config.state_dir, ec).lexically_normal().string();
  if (config.state_dir.size() > 1 && config.state_dir.back() == '/') config.state_dir.pop_back();
  return config;
}

}  // namespace runner::serve
