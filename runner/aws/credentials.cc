#include "runner/aws/credentials.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "runner/fs.h"

namespace runner::aws {
namespace {

using std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr std::string_view kEcsEndpoint = "http://169.254.170.2";
constexpr std::string_view kImdsEndpoint = "http://169.254.169.254";
constexpr std::string_view kImdsEndpointIpv6 = "http://[fd00:ec2::254]";
// A laptop or CI runner without instance metadata must not wait long for it.
constexpr auto kMetadataConnectTimeout = 1s;
constexpr auto kMetadataTimeout = 2s;
constexpr int kEcsAttempts = 2;
// After a refresh that gave nothing fresher, Get does not ask again for this long, so that
// parallel uploads do not hammer the endpoint.
constexpr auto kRefreshBackoff = 10s;

// An unset and an empty variable are the same thing here, as in the AWS SDKs (`VAR=` in a CI
// file is how people unset one).
std::optional<std::string> Var(const Environment& env, std::string_view name) {
  std::optional<std::string> value = Lookup(env, name);
  if (!value || value->empty()) return std::nullopt;
  return value;
}

std::string Trim(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The URL for messages: no query string, which could carry something private.
std::string ForMessage(std::string_view url) { return std::string(url.substr(0, url.find('?'))); }

// --- Shared config and credentials files.

using IniSection = std::map<std::string, std::string>;
using Ini = std::map<std::string, IniSection>;

// The INI dialect of the AWS CLI (Python's configparser): `[section]`, `key = value` (keys
// case-insensitive), whole-line comments with # or ;, and lines indented deeper than their
// key continuing its value (nested settings such as `s3 =`, which we never need).
Ini ParseIni(std::string_view text) {
  Ini ini;
  IniSection* section = nullptr;
  std::string* value = nullptr;
  size_t key_indent = 0;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // A file saved on Windows ends its lines with CRLF.
    if (line.ends_with('\r')) line.pop_back();
    size_t indent = line.find_first_not_of(" \t");
    if (indent == std::string::npos) continue;
    std::string content = Trim(line);
    // Blank but for other white space (a form feed, a stray CR).
    if (content.empty()) continue;
    if (content[0] == '#' || content[0] == ';') continue;
    // A section header, even indented (configparser would take that for a continuation line,
    // which no one means).
    if (content.front() == '[' && content.back() == ']') {
      section = &ini[Trim(content.substr(1, content.size() - 2))];
      value = nullptr;
      continue;
    }
    if (value != nullptr && indent > key_indent) {
      *value += "\n" + content;
      continue;
    }
    value = nullptr;
    size_t eq = content.find_first_of("=:");
    if (section == nullptr || eq == std::string::npos) continue;
    value = &(*section)[Lower(Trim(content.substr(0, eq)))];
    *value = Trim(content.substr(eq + 1));
    key_indent = indent;
  }
  return ini;
}

struct SharedFile {
  std::string path;     // empty when there is no such file to look at (no HOME)
  std::string display;  // for messages: ~/.aws/credentials
  bool exists = false;
  Ini ini;
};

std::string ExpandHome(const std::string& path, const std::optional<std::string>& home) {
  if (home && (path == "~" || path.starts_with("~/"))) return *home + path.substr(1);
  return path;
}

std::string DisplayPath(const std::string& path, const std::optional<std::string>& home) {
  if (home && !home->empty() && path.starts_with(*home + "/")) {
    return "~" + path.substr(home->size());
  }
  return path;
}

// Reads the file named by `variable`, else ~/.aws/`name`. A missing file is no error; one
// that exists and cannot be read is.
Result<SharedFile> LoadSharedFile(const Environment& env, std::string_view variable,
                                  std::string_view name) {
  std::optional<std::string> home = Var(env, "HOME");
  SharedFile file;
  if (std::optional<std::string> path = Var(env, variable)) {
    file.path = ExpandHome(*path, home);
  } else if (home) {
    file.path = *home + "/.aws/" + std::string(name);
  } else {
    file.display = "~/.aws/" + std::string(name);
    return file;
  }
  file.display = DisplayPath(file.path, home);
  std::ifstream in(file.path, std::ios::binary);
  if (!in) {
    std::error_code error;
    if (!std::filesystem::exists(file.path, error)) return file;
    return Fail("cannot read " + file.display + ": " + ErrnoText(errno));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  file.exists = true;
  file.ini = ParseIni(buffer.str());
  return file;
}

// The profile's section in the config file: `[profile NAME]`, or `[default]` for default.
const IniSection* ConfigSection(const SharedFile& config, const std::string& profile) {
  if (profile == "default") {
    if (auto it = config.ini.find("default"); it != config.ini.end()) return &it->second;
  }
  for (const auto& [name, section] : config.ini) {
    if (name.starts_with("profile") && name.size() > 7 &&
        std::isspace(static_cast<unsigned char>(name[7])) && Trim(name.substr(7)) == profile) {
      return &section;
    }
  }
  return nullptr;
}

struct Profile {
  std::string name;
  bool explicit_name = false;  // named by AWS_PROFILE rather than the default
};

Profile ChosenProfile(const Environment& env) {
  if (auto name = Var(env, "AWS_PROFILE")) return {*name, true};
  if (auto name = Var(env, "AWS_DEFAULT_PROFILE")) return {*name, true};
  return {"default", false};
}

// --- Sources. Each either finds credentials, says why it has none (listed if no source has
// any), or fails: a configuration that is present but wrong stops the chain, as in the SDKs,
// rather than silently using other credentials than the ones the user set up.

struct Outcome {
  enum Kind { kFound, kNone, kError } kind = kNone;
  Credentials credentials;
  std::string message;  // kNone: why; kError: what is wrong
};

Outcome Found(Credentials credentials) { return {Outcome::kFound, std::move(credentials), ""}; }
Outcome None(std::string why) { return {Outcome::kNone, {}, std::move(why)}; }
Outcome Error(std::string what) { return {Outcome::kError, {}, std::move(what)}; }

Outcome FromEnvironment(const Environment& env) {
  std::optional<std::string> key = Var(env, "AWS_ACCESS_KEY_ID");
  std::optional<std::string> secret = Var(env, "AWS_SECRET_ACCESS_KEY");
  if (key && secret) {
    Credentials credentials;
    credentials.access_key_id = *key;
    credentials.secret_access_key = *secret;
    credentials.session_token = Var(env, "AWS_SESSION_TOKEN").value_or("");
    credentials.source = "environment";
    return Found(std::move(credentials));
  }
  if (key) {
    return Error(
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or unset "
        "AWS_ACCESS_KEY_ID to use a profile or instance credentials");
  }
  if (secret) {
    return Error(
        "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or unset "
        "AWS_SECRET_ACCESS_KEY to use a profile or instance credentials");
  }
  return None("environment (AWS_ACCESS_KEY_ID not set)");
}

Outcome FromProfile(const Environment& env) {
  Profile profile = ChosenProfile(env);
  std::string label = "profile '" + profile.name + "'";
  Result<SharedFile> credentials_file =
      LoadSharedFile(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  if (!credentials_file) return Error(credentials_file.error());
  Result<SharedFile> config_file = LoadSharedFile(env, "AWS_CONFIG_FILE", "config");
  if (!config_file) return Error(config_file.error());
  std::string both = credentials_file->display + " or " + config_file->display;

  if (!credentials_file->exists && !config_file->exists) {
    if (profile.explicit_name) {
      return Error("AWS_PROFILE is '" + profile.name + "' but there is no " + both);
    }
    return None(label + " (no " + both + ")");
  }
  struct Place {
    const IniSection* section;
    const SharedFile* file;
  };
  std::vector<Place> places;
  if (auto it = credentials_file->ini.find(profile.name); it != credentials_file->ini.end()) {
    places.push_back({&it->second, &*credentials_file});
  }
  if (const IniSection* section = ConfigSection(*config_file, profile.name)) {
    places.push_back({section, &*config_file});
  }
  if (places.empty()) {
    if (profile.explicit_name) {
      return Error("AWS_PROFILE is '" + profile.name + "' but no such profile is in " + both);
    }
    return None(label + " (not in " + both + ")");
  }

  for (const Place& place : places) {
    auto key = place.section->find("aws_access_key_id");
    auto secret = place.section->find("aws_secret_access_key");
    bool has_key = key != place.section->end() && !key->second.empty();
    bool has_secret = secret != place.section->end() && !secret->second.empty();
    if (has_key && has_secret) {
      Credentials credentials;
      credentials.access_key_id = key->second;
      credentials.secret_access_key = secret->second;
      if (auto token = place.section->find("aws_session_token"); token != place.section->end()) {
        credentials.session_token = token->second;
      }
      credentials.source = label + " in " + place.file->display;
      return Found(std::move(credentials));
    }
    if (has_key != has_secret) {
      return Error(label + " in " + place.file->display + " has " +
                   (has_key ? "aws_access_key_id but no aws_secret_access_key"
                            : "aws_secret_access_key but no aws_access_key_id"));
    }
  }
  // Profiles that get credentials some other way: resolving them is the AWS CLI's job.
  for (const Place& place : places) {
    for (std::string_view setting : {"role_arn", "credential_process", "sso_session",
                                     "sso_start_url", "web_identity_token_file"}) {
      if (place.section->contains(std::string(setting))) {
        return Error(label + " in " + place.file->display + " uses " + std::string(setting) +
                     ", which runner does not resolve; export the credentials instead: eval "
                     "\"$(aws configure export-credentials --profile " +
                     profile.name + " --format env)\"");
      }
    }
  }
  return None(label + " (no aws_access_key_id in " + both + ")");
}

}  // namespace

Result<system_clock::time_point> ParseIsoTime(const std::string& text) {
  int year, month, day, hour, minute, second, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6) {
    return Fail("unreadable time '" + text + "'");
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t seconds = timegm(&tm);
  std::string_view rest = std::string_view(text).substr(static_cast<size_t>(consumed));
  if (rest.starts_with('.')) {
    size_t digits = rest.find_first_not_of("0123456789", 1);
    rest = rest.substr(digits == std::string_view::npos ? rest.size() : digits);
  }
  if ((rest.starts_with('+') || rest.starts_with('-')) && rest.size() >= 6) {
    int offset_hours = 0, offset_minutes = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &offset_hours,
                    &offset_minutes) != 2) {
      return Fail("unreadable time '" + text + "'");
    }
    int offset = (offset_hours * 60 + offset_minutes) * 60;
    seconds += rest[0] == '+' ? -offset : offset;
  } else if (!rest.empty() && rest != "Z") {
    return Fail("unreadable time '" + text + "'");
  }
  // system_clock counts nanoseconds in 64 bits: years 1678 to 2262. A time beyond is clamped
  // (an expiration centuries away never comes) rather than overflowing in from_time_t.
  constexpr auto kMax =
      std::chrono::duration_cast<std::chrono::seconds>(system_clock::duration::max());
  constexpr auto kMin =
      std::chrono::duration_cast<std::chrono::seconds>(system_clock::duration::min());
  if (seconds >= kMax.count()) return system_clock::time_point::max();
  if (seconds <= kMin.count()) return system_clock::time_point::min();
  return system_clock::from_time_t(seconds);
}

namespace {

// The JSON that ECS and instance metadata serve. Messages never quote the body: it holds the
// secret.
Result<Credentials> ParseCredentialsJson(const std::string& body, std::string source) {
  try {
    nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) return Fail("the response is not a JSON object");
    for (const char* name : {"Code", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}) {
      auto it = json.find(name);
      if (it != json.end() && !it->is_string() && !it->is_null()) {
        return Fail(std::string("the response's ") + name + " is not a string");
      }
    }
    auto text = [&](const char* name) -> std::optional<std::string> {
      auto it = json.find(name);
      if (it == json.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    if (auto code = text("Code"); code && *code != "Success") {
      return Fail("the endpoint answered Code '" + *code + "'");
    }
    Credentials credentials;
    std::optional<std::string> key = text("AccessKeyId");
    std::optional<std::string> secret = text("SecretAccessKey");
    if (!key || key->empty() || !secret || secret->empty()) {
      return Fail("the response has no AccessKeyId and SecretAccessKey");
    }
    credentials.access_key_id = *key;
    credentials.secret_access_key = *secret;
    credentials.session_token = text("Token").value_or("");
    if (std::optional<std::string> expiration = text("Expiration")) {
      Result<system_clock::time_point> time = ParseIsoTime(*expiration);
      if (!time) return Fail("Expiration: " + time.error());
      credentials.expiration = *time;
    }
    credentials.source = std::move(source);
    return credentials;
  } catch (const nlohmann::json::exception&) {
    return Fail("the response is not the expected JSON");
  }
}

HttpRequest MetadataRequest(std::string method, std::string url) {
  HttpRequest request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.timeout = kMetadataTimeout;
  request.connect_timeout = kMetadataConnectTimeout;
  return request;
}

bool IsAllowedContainerHost(std::string_view url) {
  // The SDKs only send the container token over plain HTTP to the machine itself or to the
  // ECS and EKS agents' link-local addresses.
  if (url.starts_with("https://")) return true;
  if (!url.starts_with("http://")) return false;
  std::string_view rest = url.substr(7);
  std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host.starts_with("127.") || host == "[::1]" ||
         host == "169.254.170.2" || host == "169.254.170.23" || host == "[fd00:ec2::23]";
}

Outcome FromContainer(const Environment& env, HttpClient& http) {
  std::optional<std::string> relative = Var(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  std::optional<std::string> full = Var(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!relative && !full) return None("ECS (AWS_CONTAINER_CREDENTIALS_* not set)");

  HttpRequest request = MetadataRequest(
      "GET", relative
                 ? std::string(kEcsEndpoint) + (relative->starts_with('/') ? "" : "/") + *relative
                 : *full);
  std::string where = "ECS container credentials (" + ForMessage(request.url) + ")";
  if (!relative && !IsAllowedContainerHost(request.url)) {
    return Error(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https, or http to the loopback address or "
        "the ECS/EKS agent: " +
        ForMessage(request.url));
  }
  std::optional<std::string> token;
  if (std::optional<std::string> token_file = Var(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
    std::ifstream in(*token_file, std::ios::binary);
    if (!in) {
      return Error("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + *token_file + ": " +
                   ErrnoText(errno));
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    token = Trim(buffer.str());
  } else {
    token = Var(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
  }
  if (token) {
    if (token->find_first_of("\r\n") != std::string::npos) {
      return Error("the container authorization token holds a line break");
    }
    request.headers.emplace_back("Authorization", *token);
  }
  request.headers.emplace_back("Accept", "application/json");

  Result<HttpResponse> response = Fail("not sent");
  for (int attempt = 1; attempt <= kEcsAttempts; ++attempt) {
    response = http.Send(request);
    if (response && response->status < 500) break;
    if (attempt < kEcsAttempts) std::this_thread::sleep_for(100ms);
  }
  if (!response) return Error(where + ": " + response.error());
  if (response->status != 200) {
    return Error(where + ": HTTP " + std::to_string(response->status));
  }
  Result<Credentials> credentials =
      ParseCredentialsJson(response->body, "ECS container credentials");
  if (!credentials) return Error(where + ": " + credentials.error());
  return Found(std::move(*credentials));
}

Outcome FromInstanceMetadata(const Environment& env, HttpClient& http) {
  if (Lower(Var(env, "AWS_EC2_METADATA_DISABLED").value_or("")) == "true") {
    return None("EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)");
  }
  std::string endpoint = std::string(kImdsEndpoint);
  if (auto given = Var(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
    endpoint = *given;
  } else if (Lower(Var(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").value_or("")) == "ipv6") {
    endpoint = std::string(kImdsEndpointIpv6);
  }
  while (endpoint.ends_with('/')) endpoint.pop_back();
  auto none = [&](const std::string& why) { return None("EC2 instance metadata (" + why + ")"); };

  // IMDSv2: a session token first, then every read with it.
  HttpRequest token_request = MetadataRequest("PUT", endpoint + "/latest/api/token");
  token_request.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", "21600");
  Result<HttpResponse> token = http.Send(token_request);
  if (!token) return none(token.error());
  if (token->status != 200 || token->body.empty()) {
    return none(ForMessage(token_request.url) + ": HTTP " + std::to_string(token->status));
  }

  auto get = [&](const std::string& path) {
    HttpRequest request = MetadataRequest("GET", endpoint + path);
    request.headers.emplace_back("X-aws-ec2-metadata-token", token->body);
    return http.Send(request);
  };
  constexpr std::string_view kRoles = "/latest/meta-data/iam/security-credentials/";
  Result<HttpResponse> roles = get(std::string(kRoles));
  if (!roles) return none(roles.error());
  if (roles->status == 404) return none(endpoint + ": no IAM role attached to this instance");
  if (roles->status != 200) {
    return none(endpoint + std::string(kRoles) + ": HTTP " + std::to_string(roles->status));
  }
  std::string role = Trim(roles->body.substr(0, roles->body.find('\n')));
  if (role.empty()) return none(endpoint + ": no IAM role attached to this instance");

  Result<HttpResponse> response = get(std::string(kRoles) + role);
  if (!response) return none(response.error());
  if (response->status != 200) {
    return none(endpoint + std::string(kRoles) + role + ": HTTP " +
                std::to_string(response->status));
  }
  Result<Credentials> credentials =
      ParseCredentialsJson(response->body, "EC2 instance metadata (role " + role + ")");
  if (!credentials) return none(endpoint + " role " + role + ": " + credentials.error());
  return Found(std::move(*credentials));
}

class DefaultChain : public CredentialsProvider {
 public:
  DefaultChain(Environment env, HttpClient& http, CredentialsOptions options)
      : env_(std::move(env)), http_(http), options_(std::move(options)) {}

  Result<Credentials> Get() override {
    std::lock_guard lock(mutex_);
    system_clock::time_point now = options_.now();
    if (cached_ && (Fresh(*cached_, now) || now < retry_after_)) return *cached_;
    Result<Credentials> fetched = Resolve();
    if (!fetched) {
      // A failed refresh is no reason to drop credentials that still work.
      if (cached_ && cached_->expiration && now < *cached_->expiration) {
        retry_after_ = now + kRefreshBackoff;
        return *cached_;
      }
      return fetched;
    }
    cached_ = *fetched;
    if (!Fresh(*cached_, now)) retry_after_ = now + kRefreshBackoff;
    return *cached_;
  }

 private:
  bool Fresh(const Credentials& credentials, system_clock::time_point now) const {
    return !credentials.expiration || now + options_.refresh_before < *credentials.expiration;
  }

  Result<Credentials> Resolve() {
    const std::function<Outcome()> sources[] = {
        [&] { return FromEnvironment(env_); },
        [&] { return FromProfile(env_); },
        [&] { return FromContainer(env_, http_); },
        [&] { return FromInstanceMetadata(env_, http_); },
    };
    std::vector<std::string> tried;
    for (const auto& source : sources) {
      Outcome outcome = source();
      if (outcome.kind == Outcome::kFound) return outcome.credentials;
      if (outcome.kind == Outcome::kError) return Fail("AWS credentials: " + outcome.message);
      tried.push_back(outcome.message);
    }
    std::string message = "no AWS credentials:";
    for (size_t i = 0; i < tried.size(); ++i) message += (i ? "; " : " ") + tried[i];
    message +=
        ". Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in "
        "~/.aws/credentials";
    return Fail(std::move(message));
  }

  const Environment env_;
  HttpClient& http_;
  const CredentialsOptions options_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
  system_clock::time_point retry_after_{};
};

}  // namespace

std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsChain(const Environment& env,
                                                                 HttpClient& http) {
  return MakeDefaultCredentialsChain(env, http, CredentialsOptions{});
}

std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsChain(const Environment& env,
                                                                 HttpClient& http,
                                                                 CredentialsOptions options) {
  return std::make_unique<DefaultChain>(env, http, std::move(options));
}

std::string DefaultRegion(const Environment& env) {
  if (auto region = Var(env, "AWS_REGION")) return *region;
  if (auto region = Var(env, "AWS_DEFAULT_REGION")) return *region;
  // An unreadable config file only costs the region here; the credentials chain reports it.
  if (Result<SharedFile> config = LoadSharedFile(env, "AWS_CONFIG_FILE", "config")) {
    if (const IniSection* section = ConfigSection(*config, ChosenProfile(env).name)) {
      if (auto it = section->find("region"); it != section->end() && !it->second.empty()) {
        return it->second;
      }
    }
  }
  return "us-east-1";
}

}  // namespace runner::aws
