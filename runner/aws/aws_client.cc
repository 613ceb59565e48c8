#include "runner/aws/aws_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "runner/aws/sigv4.h"
#include "runner/backoff.h"
#include "runner/sha256.h"

namespace runner::aws {

namespace {

using std::chrono::milliseconds;

// A name without a value is sent bare (`?uploads`), as S3 documents it.
std::string QueryString(const Pairs& query) {
  std::string out;
  for (const auto& [name, value] : query) {
    out += out.empty() ? '?' : '&';
    out += UriEncode(name, false);
    if (!value.empty()) {
      out += '=';
      out += UriEncode(value, false);
    }
  }
  return out;
}

std::string Seconds(milliseconds delay) {
  return fmt::format("{:.1f}s", static_cast<double>(delay.count()) / 1000.0);
}

AwsError Failure(std::string text) {
  AwsError error;
  error.text = std::move(text);
  return error;
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view url) {
  size_t scheme_end = url.find("://");
  std::string_view scheme = scheme_end == std::string_view::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return Fail(fmt::format("endpoint '{}' must start with http:// or https://", url));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  std::string_view host = rest.substr(0, slash);
  if (slash != std::string_view::npos && rest.substr(slash) != "/") {
    return Fail(fmt::format("endpoint '{}' must not have a path (give scheme://host[:port])", url));
  }
  if (host.empty() || host.find_first_of("@?#") != std::string_view::npos) {
    return Fail(fmt::format("endpoint '{}' must be scheme://host[:port]", url));
  }
  return Endpoint{std::string(scheme), std::string(host)};
}

Endpoint DefaultEndpoint(std::string_view service, std::string_view region) {
  std::string_view suffix = region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return {"https", fmt::format("{}.{}.{}", service, region, suffix)};
}

std::string EndpointFromEnvironment(const Environment& env, std::string_view service_id) {
  for (const std::string& name :
       {fmt::format("AWS_ENDPOINT_URL_{}", service_id), std::string("AWS_ENDPOINT_URL")}) {
    if (auto value = Lookup(env, name); value && !value->empty()) return *value;
  }
  return {};
}

Result<std::unique_ptr<AwsClient>> AwsClient::Create(HttpClient& http,
                                                     CredentialsProvider& credentials,
                                                     AwsClientOptions options) {
  if (options.service.empty()) return Fail("AWS client: no service");
  if (options.region.empty()) return Fail(fmt::format("{}: no region", options.service));
  Endpoint endpoint = DefaultEndpoint(options.service, options.region);
  if (!options.endpoint.empty()) {
    auto parsed = ParseEndpoint(options.endpoint);
    if (!parsed) return Fail(parsed.error());
    endpoint = std::move(*parsed);
  }
  if (options.retry.max_attempts < 1) options.retry.max_attempts = 1;
  return std::unique_ptr<AwsClient>(
      new AwsClient(http, credentials, std::move(options), std::move(endpoint)));
}

AwsClient::AwsClient(HttpClient& http, CredentialsProvider& credentials, AwsClientOptions options,
                     Endpoint endpoint)
    : http_(http),
      credentials_(credentials),
      options_(std::move(options)),
      endpoint_(std::move(endpoint)) {}

void AwsClient::Log(std::string_view line) const {
  if (options_.log) options_.log(line);
}

void AwsClient::Sleep(milliseconds delay) const {
  if (options_.sleep) {
    options_.sleep(delay);
    return;
  }
  // Cut short by a cancel, so that a cancelled build does not wait out a long backoff.
  WaitUnlessCancelled(delay, options_.cancelled);
}

AwsResult<HttpResponse> AwsClient::Send(const AwsRequest& request) {
  const std::string_view body = request.Body();
  // Digested once per request, not per attempt: the body does not change.
  const std::string payload_sha256 =
      request.payload_sha256.empty() ? Sha256Hex(body) : request.payload_sha256;
  const std::string host = request.host.empty() ? endpoint_.host : request.host;
  const std::string url =
      fmt::format("{}://{}{}{}", endpoint_.scheme, host, request.path, QueryString(request.query));
  const int max_attempts =
      request.max_attempts > 0 ? request.max_attempts : options_.retry.max_attempts;
  // Large bodies get time to travel; a stall is caught by stall_timeout long before.
  const milliseconds timeout =
      request.timeout.count() > 0
          ? request.timeout
          : std::chrono::seconds(120) + milliseconds(body.size() / 128 / 1024 * 1000);
  auto cancelled = [&] { return request.cancellable && Cancelled(); };

  thread_local std::mt19937_64 random{std::random_device{}()};
  for (int attempt = 1;; ++attempt) {
    if (request.attempts_made != nullptr) *request.attempts_made = attempt;
    if (cancelled()) return std::unexpected(Failure(fmt::format("cancelled ({})", request.what)));
    Result<Credentials> credentials = credentials_.Get();
    if (!credentials) {
      return std::unexpected(Failure(fmt::format("{} ({})", credentials.error(), request.what)));
    }

    SignableRequest signable;
    signable.method = request.method;
    signable.path = request.path;
    signable.query = request.query;
    signable.headers = {{"host", host}};
    for (const auto& header : request.headers) signable.headers.push_back(header);
    signable.payload_sha256 = payload_sha256;
    SigningParams params;
    params.region = options_.region;
    params.service = options_.service;
    params.time = options_.now ? options_.now() : std::chrono::system_clock::now();
    params.s3_rules = options_.s3_rules;

    HttpRequest http;
    http.method = request.method;
    http.url = url;
    http.headers = signable.headers;
    for (auto& header : SignHeaders(signable, *credentials, params)) {
      http.headers.push_back(std::move(header));
    }
    http.body = body;
    http.timeout = timeout;
    http.connect_timeout = options_.connect_timeout;
    http.stall_timeout = options_.stall_timeout;
    if (request.cancellable && options_.cancelled) http.cancelled = options_.cancelled;

    Result<HttpResponse> response = http_.Send(http);
    AwsError error;
    if (!response) {
      if (cancelled()) return std::unexpected(Failure(fmt::format("cancelled ({})", request.what)));
      error.text = response.error();
    } else if (response->status >= 200 && response->status < 300) {
      std::optional<AwsError> in_body =
          request.error_in_body ? ErrorInBody(*response) : std::nullopt;
      if (!in_body) return std::move(*response);
      error = std::move(*in_body);
    } else {
      error = DecodeAwsError(*response);
    }
    if (IsCredentialsError(error)) {
      // The source helps; the key id and the secret never appear.
      error.text += fmt::format(" [credentials from {}]", credentials->source);
    }
    if (!IsRetryable(error) || attempt >= max_attempts) {
      std::string tries = attempt > 1 ? fmt::format(", after {} attempts", attempt) : "";
      error.text = fmt::format("{} ({}{})", error.text, request.what, tries);
      return std::unexpected(std::move(error));
    }
    const uint64_t cap_ms = static_cast<uint64_t>(
        DoublingDelay(options_.retry.base_delay, options_.retry.max_delay, attempt - 1).count());
    milliseconds delay(cap_ms == 0 ? 0 : random() % cap_ms);
    Log(fmt::format("{}: {}; retrying in {} (attempt {} of {})", request.what, error.text,
                    Seconds(delay), attempt + 1, max_attempts));
    Sleep(delay);
  }
}

std::string FormEncode(const Pairs& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += UriEncode(name, false);
    out += '=';
    out += UriEncode(value, false);
  }
  return out;
}

AwsRequest QueryRequest(std::string_view action, std::string_view version, const Pairs& params) {
  Pairs form = {{"Action", std::string(action)}, {"Version", std::string(version)}};
  form.insert(form.end(), params.begin(), params.end());
  AwsRequest request;
  request.method = "POST";
  request.headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
  request.body = FormEncode(form);
  request.what = std::string(action);
  return request;
}

AwsRequest JsonRequest(std::string_view target_prefix, std::string_view operation, std::string json,
                       std::string_view version) {
  AwsRequest request;
  request.method = "POST";
  request.headers = {{"content-type", fmt::format("application/x-amz-json-{}", version)},
                     {"x-amz-target", fmt::format("{}.{}", target_prefix, operation)}};
  request.body = std::move(json);
  request.what = std::string(operation);
  return request;
}

}  // namespace runner::aws
