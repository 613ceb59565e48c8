#include "runner/worker/records.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "runner/build_context.h"

namespace runner::worker {

namespace {

constexpr int kNumberDigits = 10;

std::optional<std::int64_t> ParseNumber(std::string_view text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

std::string HeadName(const std::string& project, const std::string& branch) {
  return fmt::format("heads/{}/{}", SanitizeIdPart(project), SanitizeIdPart(branch));
}

}  // namespace

std::string Records::BuildName(const std::string& id, std::string_view name) {
  return fmt::format("builds/{}/{}", id, name);
}

std::string Records::RunName(const std::string& id, int attempt, std::string_view name) {
  return fmt::format("builds/{}/runs/{}/{}", id, attempt, name);
}

std::string Records::LogChunkPrefix(const std::string& id, int attempt, const std::string& step) {
  return RunName(id, attempt, "logs/" + step + "/");
}

Result<std::int64_t> Records::Largest(const std::string& prefix) {
  auto names = store_->List(prefix);
  if (!names) return Fail(names.error());
  std::int64_t largest = 0;
  for (const std::string& name : *names) {
    std::string_view rest = std::string_view(name).substr(prefix.size());
    if (rest.find('/') != std::string_view::npos) continue;
    if (auto number = ParseNumber(rest)) largest = std::max(largest, *number);
  }
  return largest;
}

Result<std::int64_t> Records::ClaimFrom(const std::string& prefix, std::int64_t first, int digits,
                                        const std::function<std::string(std::int64_t)>& body,
                                        const std::function<Result<bool>(std::int64_t)>& may_take) {
  for (std::int64_t n = std::max<std::int64_t>(first, 1);; ++n) {
    if (may_take) {
      auto free = may_take(n);
      if (!free) return Fail(free.error());
      if (!*free) continue;
    }
    auto put = store_->PutIfAbsent(fmt::format("{}{:0{}}", prefix, n, digits), body(n),
                                   "application/json");
    if (!put) return Fail(put.error());
    if (*put) return n;  // else taken (412): the next one
  }
}

Result<std::int64_t> Records::ClaimNumber(const std::string& project, const std::string& branch) {
  const std::string sanitized = SanitizeIdPart(project);
  const std::string prefix = fmt::format("numbers/{}/", sanitized);
  std::int64_t first = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = last_number_.find(sanitized);
    if (it != last_number_.end()) first = it->second + 1;
  }
  if (first == 0) {
    auto largest = Largest(prefix);
    if (!largest) return Fail(largest.error());
    first = *largest + 1;
  }
  // The body names the build, for the list of builds.
  const std::string id_prefix = BuildId(project, branch, "");
  // The id first: of two claimants of one id, only the one that took it goes on to the number.
  // One that then loses the number leaves an id no build of this project will have again.
  const std::string claim = nlohmann::json{{"project", project}, {"branch", branch}}.dump();
  auto claimed = ClaimFrom(
      prefix, first, kNumberDigits, [&](std::int64_t n) { return id_prefix + std::to_string(n); },
      [&](std::int64_t n) -> Result<bool> {
        auto put = store_->PutIfAbsent(BuildName(id_prefix + std::to_string(n), "claim"), claim,
                                       "application/json");
        if (!put) return Fail(put.error());
        return put->has_value();
      });
  if (!claimed) return Fail(claimed.error());
  std::lock_guard lock(mutex_);
  std::int64_t& last = last_number_[sanitized];
  last = std::max(last, *claimed);
  return *claimed;
}

Result<bool> Records::MarkDelivery(const std::string& delivery, std::string_view body) {
  auto put = store_->PutIfAbsent("deliveries/" + delivery, body, "application/json");
  if (!put) return Fail(put.error());
  return put->has_value();
}

Result<std::optional<std::string>> Records::Delivery(const std::string& delivery) {
  return store_->Find("deliveries/" + delivery);
}

Status Records::RequestCancel(const std::string& id, std::string_view reason) {
  auto put = store_->Put(BuildName(id, "cancel"), reason, "text/plain; charset=utf-8");
  if (!put) return Fail(put.error());
  return {};
}

Result<std::optional<std::string>> Records::CancelRequest(const std::string& id) {
  return store_->Find(BuildName(id, "cancel"));
}

Status Records::UpdateDelivery(const std::string& delivery, std::string_view body) {
  auto put = store_->Put("deliveries/" + delivery, body, "application/json");
  if (!put) return Fail(put.error());
  return {};
}

Result<std::int64_t> Records::Head(const std::string& project, const std::string& branch) {
  const std::string name = HeadName(project, branch);
  auto body = store_->Find(name);
  if (!body) return Fail(body.error());
  if (!*body) return 0;
  auto number = ParseNumber(**body);
  if (!number) return Fail(fmt::format("{}: not a build number", store_->UrlOf(name)));
  return *number;
}

Status Records::SetHead(const std::string& project, const std::string& branch,
                        std::int64_t number) {
  auto put = store_->Put(HeadName(project, branch), std::to_string(number), "text/plain");
  if (!put) return Fail(put.error());
  return {};
}

Result<int> Records::ClaimAttempt(const std::string& id, std::string_view body) {
  const std::string prefix = BuildName(id, "attempts/");
  auto latest = Largest(prefix);
  if (!latest) return Fail(latest.error());
  auto claimed = ClaimFrom(prefix, *latest + 1, 1, [&](std::int64_t) { return std::string(body); });
  if (!claimed) return Fail(claimed.error());
  return static_cast<int>(*claimed);
}

Result<int> Records::LatestAttempt(const std::string& id) {
  auto latest = Largest(BuildName(id, "attempts/"));
  if (!latest) return Fail(latest.error());
  return static_cast<int>(*latest);
}

Result<std::vector<std::string>> Records::BuildIds(std::size_t limit) {
  auto names = store_->List("numbers/");
  if (!names) return Fail(names.error());
  // Sorted bytewise, and the numbers have a fixed width: each project's newest come last.
  std::map<std::string, std::vector<std::string>> by_project;
  for (const std::string& name : *names) {
    size_t slash = name.find('/', 8);
    if (slash == std::string::npos) continue;
    by_project[name.substr(8, slash - 8)].push_back(name);
  }
  std::vector<std::string> ids;
  for (auto& [project, numbers] : by_project) {
    size_t from = numbers.size() > limit ? numbers.size() - limit : 0;
    for (size_t i = from; i < numbers.size(); ++i) {
      auto id = store_->Get(numbers[i]);
      if (!id) return Fail(id.error());
      ids.push_back(std::move(*id));
    }
  }
  return ids;
}

Result<std::unique_ptr<Records>> OpenRecords(const std::string& url, const Environment& env,
                                             std::function<void(std::string_view)> log) {
  ArtifactStoreOptions options;
  std::error_code ec;
  options.workspace = std::filesystem::current_path(ec).string();
  options.env = env;
  options.log = std::move(log);
  auto store = OpenArtifactStore(url, std::move(options));
  if (!store) return Fail(fmt::format("records: {}", store.error()));
  return std::make_unique<Records>(std::move(*store));
}

}  // namespace runner::worker
