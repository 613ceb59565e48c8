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

  // Many machines (SPEC section 10): with `queue`, serve sends builds there and `runner worker`
  // builds them; `records` (required then) holds records, logs, numbers and delivery marks.
  std::string queue;    // an SQS FIFO queue URL, or file:///DIR for a directory queue
  std::string records;  // s3://bucket/prefix/ or file:///dir/
  // How long a worker's message stays invisible between two heartbeats (which come every third
  // of it); a dead worker's build is taken by another once it runs out.
  Duration visibility_timeout = std::chrono::minutes(5);
  // The long poll of a worker waiting for a build (at most 20 s, SQS's longest).
  Duration poll_wait = std::chrono::seconds(20);
  // How often a worker ships the logs of a running build to the records.
  Duration log_interval = std::chrono::seconds(2);
  // Directory queue only: receives after which a message goes to DIR/dead (SQS: the queue's
  // RedrivePolicy).
  int max_receives = 5;

  const RepoConfig* FindRepo(std::string_view name) const;
};

// Reads and checks FILE; every problem is reported (formatted diagnostics, FILE:LINE:COL, or
// FILE: error: ... for an unreadable file) in the error, not only the first. Secrets and tokens are
// read from `environment`. `queue` non-empty (--queue) replaces the file's `queue:`.
std::expected<ServeConfig, std::string> LoadServeConfig(const std::string& file,
                                                        const Environment& environment,
                                                        const std::string& queue = "");

}  // namespace runner::serve
