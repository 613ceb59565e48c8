// The configuration of `runner serve` (SPEC section 9): where it listens, the repositories it
// builds and how, and where it keeps its state.
#pragma once

#include <expected>
#include <string>
#include <vector>

#include "runner/duration.h"
#include "runner/environment.h"

namespace runner::serve {

struct RepoConfig {
  std::string name;                         // full_name in the payload: acme/orders
  std::string clone_url;                    // without credentials
  std::string pipeline = "pipeline.yml";    // relative to the repository's top level
  std::string project;                      // default: the part of `name` after '/'
  std::string secret_env;                   // names the variable holding the webhook secret
  std::string token_env;                    // names the variable holding the token; may be empty
  std::vector<std::string> cancel_running;  // branch globs
  // The values of those variables, read once at start.
  std::string secret;
  std::string token;
};

struct ServeConfig {
  std::string file;  // as given
  std::string listen = "127.0.0.1:8080";
  std::string url;  // default: http://LISTEN
  std::vector<RepoConfig> repos;
  int jobs = 2;
  std::string state_dir = ".runner";  // absolute once loaded
  std::string github_api = "https://api.github.com";
  // The variable holding the token that rerun and cancel need; empty: both are refused.
  std::string admin_token_env;
  std::string admin_token;
  // How long running builds may go on after SIGTERM before they are cancelled.
  Duration stop_grace = std::chrono::minutes(10);

  const RepoConfig* FindRepo(std::string_view name) const;
};

// Reads and checks FILE; every problem is reported (formatted diagnostics, FILE:LINE:COL, or
// FILE: error: ... for an unreadable file) in the error, not only the first. Secrets and tokens are
// read from `environment`.
std::expected<ServeConfig, std::string> LoadServeConfig(const std::string& file,
                                                        const Environment& environment);

}  // namespace runner::serve
