#include "runner/serve/github_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "runner/backoff.h"
#include "runner/hex.h"
#include "runner/utf8.h"

namespace runner::serve {

namespace {

using nlohmann::json;

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026

// An owner or repository name as GitHub allows them, so that it is one URL path segment.
bool IsNamePart(std::string_view part) {
  return !part.empty() && part != "." && part != ".." &&
         std::all_of(part.begin(), part.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
         });
}

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// "HTTP 422: Validation Failed; description is too long (maximum is 140 characters)": GitHub's
// `message` and those of its `errors`, when the body has them.
std::string DescribeAnswer(const aws::HttpResponse& response) {
  std::string text = fmt::format("GitHub answered HTTP {}", response.status);
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return text;
  auto message = body.find("message");
  if (message != body.end() && message->is_string()) {
    text += ": " + message->get<std::string>();
  }
  auto errors = body.find("errors");
  if (errors == body.end() || !errors->is_array()) return text;
  for (const json& error : *errors) {
    auto detail = error.is_object() ? error.find("message") : error.end();
    if (error.is_object() && detail != error.end() && detail->is_string()) {
      text += "; " + detail->get<std::string>();
    }
  }
  return text;
}

bool IsRateLimited(const aws::HttpResponse& response) {
  return response.Header("x-ratelimit-remaining") == "0" || !response.Header("retry-after").empty();
}

bool IsRetryable(const aws::HttpResponse& response) {
  return response.status >= 500 || response.status == 429 ||
         (response.status == 403 && IsRateLimited(response));
}

// Retry-After in seconds (the form GitHub sends); nullopt when absent or not a number.
std::optional<Duration> RetryAfter(const aws::HttpResponse& response) {
  std::string value = response.Header("retry-after");
  long long seconds = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || error != std::errc() || end != value.data() + value.size() || seconds < 0) {
    return std::nullopt;
  }
  // Beyond a day it is capped by max_delay anyway; the bound keeps the multiplication safe.
  return std::chrono::seconds(std::min(seconds, 86400LL));
}

// The token can only reach a message through something the server echoed; it never does.
std::string Redact(std::string text, std::string_view token) {
  if (token.empty()) return text;
  for (std::size_t at = text.find(token); at != std::string::npos; at = text.find(token, at)) {
    text.replace(at, token.size(), "***");
  }
  return text;
}

}  // namespace

std::string TruncateDescription(std::string_view text, std::size_t max_chars) {
  std::string valid = MakeValidUtf8(text);
  std::size_t chars = 0;
  // Where the code point numbered max_chars - 1 starts: what is kept when the text is cut.
  std::size_t cut = 0;
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (IsContinuationByte(valid[i])) continue;
    if (chars + 1 == max_chars) cut = i;
    if (++chars > max_chars) {
      if (max_chars == 0) return {};
      return valid.substr(0, cut) + std::string(kEllipsis);
    }
  }
  return valid;
}

GitHubStatuses::GitHubStatuses(aws::HttpClient& http, std::string api_base, std::string token,
                               StatusRetry retry)
    : http_(http),
      api_base_(std::move(api_base)),
      token_(std::move(token)),
      retry_(std::move(retry)) {
  while (api_base_.ends_with('/')) api_base_.pop_back();
}

Status GitHubStatuses::Post(const std::string& repository, const std::string& sha,
                            const CommitStatus& status) {
  std::size_t slash = repository.find('/');
  if (slash == std::string::npos || !IsNamePart(repository.substr(0, slash)) ||
      !IsNamePart(repository.substr(slash + 1))) {
    return Fail(fmt::format("commit status: repository '{}' must be OWNER/NAME", repository));
  }
  const std::string what =
      fmt::format("commit status '{}' for {}@{}", status.state, repository, sha);
  if (sha.size() != 40 || !HexDecode(sha)) {
    return Fail(fmt::format("{}: the commit must be a 40-character hex id", what));
  }
  if (status.state != "pending" && status.state != "success" && status.state != "failure" &&
      status.state != "error") {
    return Fail(fmt::format("{}: the state must be pending, success, failure or error", what));
  }

  json body = {{"state", status.state}};
  if (!status.target_url.empty()) body["target_url"] = status.target_url;
  if (!status.description.empty()) body["description"] = TruncateDescription(status.description);
  if (!status.context.empty()) body["context"] = status.context;
  const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);

  aws::HttpRequest request;
  request.method = "POST";
  request.url = fmt::format("{}/repos/{}/statuses/{}", api_base_, repository, sha);
  request.headers = {{"Accept", "application/vnd.github+json"},
                     {"Content-Type", "application/json"},
                     {"User-Agent", "runner"},
                     {"X-GitHub-Api-Version", "2022-11-28"}};
  if (!token_.empty()) request.headers.emplace_back("Authorization", "Bearer " + token_);
  request.body = payload;
  request.timeout = std::chrono::seconds(30);

  const int attempts = std::max(1, retry_.attempts);
  for (int attempt = 1;; ++attempt) {
    Result<aws::HttpResponse> response = http_.Send(request);
    if (response && response->status >= 200 && response->status < 300) return {};
    std::string problem = response ? DescribeAnswer(*response) : response.error();
    if (response && !IsRetryable(*response)) {
      return Fail(Redact(fmt::format("{}: {}", what, problem), token_));
    }
    if (attempt >= attempts) {
      std::string tries = attempt > 1 ? fmt::format(" (after {} attempts)", attempt) : "";
      return Fail(Redact(fmt::format("{}: {}{}", what, problem, tries), token_));
    }
    std::optional<Duration> retry_after = response ? RetryAfter(*response) : std::nullopt;
    Duration delay = retry_after ? std::min(*retry_after, retry_.max_delay)
                                 : DoublingDelay(retry_.first_delay, retry_.max_delay, attempt - 1);
    if (retry_.sleep) {
      retry_.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
}

}  // namespace runner::serve
