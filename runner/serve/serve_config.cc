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
    "listen", "url", "repos", "jobs", "state_dir", "github_api", "admin_token_env", "stop_grace"};
const std::vector<std::string> kRepoKeys = {"name",       "clone_url", "pipeline",      "project",
                                            "secret_env", "token_env", "cancel_running"};

// Reads one file's YAML tree into a ServeConfig, reporting every problem to `diags`.
class ConfigReader {
 public:
  ConfigReader(Diagnostics& diags, const Environment& environment)
      : diags_(diags), environment_(environment) {}

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
        std::string text;
        if (!Scalar(value, "jobs", text)) continue;
        int jobs = 0;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), jobs);
        if (error != std::errc() || end != text.data() + text.size() || jobs < 1 || jobs > 256) {
          diags_.Error(value.where, fmt::format("jobs: expected a whole number from 1 to 256, "
                                                "got '{}'",
                                                text));
        } else {
          config.jobs = jobs;
        }
      } else if (name == "stop_grace") {
        std::string text;
        if (!Scalar(value, "stop_grace", text)) continue;
        if (auto grace = ParseDuration(text)) {
          config.stop_grace = *grace;
        } else {
          diags_.Error(value.where, fmt::format("stop_grace: {}", grace.error()));
        }
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
};

}  // namespace

const RepoConfig* ServeConfig::FindRepo(std::string_view name) const {
  for (const RepoConfig& repo : repos) {
    if (repo.name == name) return &repo;
  }
  return nullptr;
}

std::expected<ServeConfig, std::string> LoadServeConfig(const std::string& file,
                                                        const Environment& environment) {
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
  ConfigReader(diags, environment).Read(documents->front(), config);
  if (diags.HasErrors()) return std::unexpected(diags.Format());
  std::error_code ec;
  config.state_dir = std::filesystem::absolute(config.state_dir, ec).lexically_normal().string();
  if (config.state_dir.size() > 1 && config.state_dir.back() == '/') config.state_dir.pop_back();
  return config;
}

}  // namespace runner::serve
