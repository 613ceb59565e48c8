// HTTP for the AWS clients (S3, instance and container metadata), behind an interface so that
// the clients are tested without a network, and a libcurl implementation.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "runner/aws/sigv4.h"
#include "runner/result.h"

namespace runner::aws {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  Pairs headers;
  // The body; the caller keeps the bytes alive until Send returns (for a large part, a view
  // into a memory-mapped file).
  std::string_view body;
  // The whole exchange; a stalled server fails the request instead of hanging the build.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // Added for S3: a transfer that moves no byte either way for this long (a server that
  // accepted the body and never answers) fails as timed out, however long `timeout` is.
  // Whole seconds; zero disables the check.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(30)};
  // Added for S3: when set, polled during the transfer (at least once a second, more often
  // while data moves); returning true aborts the request with an error ("cancelled"). Called on the
  // sending thread.
  std::function<bool()> cancelled;
};

struct HttpResponse {
  int status = 0;
  Pairs headers;  // names lowercased
  std::string body;

  // The first header named `name` (lowercase), or empty.
  std::string Header(std::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Sends one request. A transport failure (refused, reset, timed out) is an error naming the
  // URL without its query string (which may hold a presigned signature); any HTTP status,
  // 4xx and 5xx included, is a response. Safe to call from several threads at once.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

std::unique_ptr<HttpClient> MakeCurlHttpClient();

// Added for S3: settings of the libcurl client.
struct CurlHttpOptions {
  // A PEM bundle of trusted CA certificates (AWS_CA_BUNDLE); empty: the system's.
  std::string ca_bundle;
};
std::unique_ptr<HttpClient> MakeCurlHttpClient(const CurlHttpOptions& options);

}  // namespace runner::aws
