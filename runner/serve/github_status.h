// Commit statuses on GitHub (REST API, "Create a commit status"): pending while a build runs,
// then success, failure or error, linked to the build's page.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "runner/aws/http.h"
#include "runner/pipeline.h"
#include "runner/result.h"

namespace runner::serve {

struct CommitStatus {
  std::string state;  // pending, success, failure or error
  std::string target_url;
  std::string description;  // cut to 140 code points when sent (TruncateDescription)
  std::string context;      // e.g. "runner"; GitHub's default ("default") when empty
};

struct StatusRetry {
  int attempts = 5;  // the first one included
  // The wait before retry n (from 0) is first_delay * 2^n, or the answer's Retry-After, and
  // never more than max_delay.
  Duration first_delay = std::chrono::seconds(1);
  Duration max_delay = std::chrono::seconds(30);
  // How to wait between attempts; empty: sleep. Tests record the delays instead.
  std::function<void(Duration)> sleep;
};

// Thread safety: Post may be called from several threads at once (the HttpClient allows it).
class GitHubStatuses {
 public:
  // `api_base`: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise (a
  // trailing '/' is fine). `token`: sent as a bearer token when not empty. `http` must outlive
  // this object.
  GitHubStatuses(aws::HttpClient& http, std::string api_base, std::string token,
                 StatusRetry retry = {});

  // POST {api_base}/repos/{owner}/{repo}/statuses/{sha} with the JSON {state, target_url,
  // description, context} (empty ones left out) and the headers GitHub asks for (Accept:
  // application/vnd.github+json, X-GitHub-Api-Version: 2022-11-28, User-Agent: runner,
  // Authorization: Bearer TOKEN). Retries transport errors, 5xx, 429, and 403 when rate limited
  // (x-ratelimit-remaining: 0 or a Retry-After); any other answer outside 2xx is an error at
  // once carrying GitHub's `message`. `repository` is "owner/name", `sha` a 40-hex commit id.
  // No error ever contains the token.
  Status Post(const std::string& repository, const std::string& sha, const CommitStatus& status);

 private:
  aws::HttpClient& http_;
  std::string api_base_;
  std::string token_;
  StatusRetry retry_;
};

// `text` (made valid UTF-8 first) cut to at most `max_chars` Unicode code points, never inside
// a character; when cut, the last kept code point is an ellipsis "…".
std::string TruncateDescription(std::string_view text, std::size_t max_chars = 140);

}  // namespace runner::serve
