// An HttpClient that sends nothing: the test scripts responses per method and URL (or with a
// handler function) and reads back every request made, so the AWS clients are tested fast and
// exactly. Thread-safe, like the real client. Also a CredentialsProvider with fixed keys.
//
//   FakeHttpClient http;
//   http.Respond("PUT", "http://169.254.169.254/latest/api/token", FakeHttpClient::Ok("tok"));
//   http.handler = [](const HttpRequest& r) -> Result<HttpResponse> { ... };
//   ... code under test ...
//   EXPECT_EQ(http.Requests()[0].Header("x-aws-ec2-metadata-token-ttl-seconds"), "21600");
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/result.h"

namespace runner::aws {

class FakeHttpClient : public HttpClient {
 public:
  // A request as the client under test made it (the body copied).
  struct Recorded {
    std::string method;
    std::string url;
    Pairs headers;
    std::string body;
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds connect_timeout{0};

    // The first header named `name`, compared case-insensitively; empty when absent.
    std::string Header(std::string_view name) const {
      for (const auto& [key, value] : headers) {
        if (EqualsIgnoreCase(key, name)) return value;
      }
      return "";
    }
    bool HasHeader(std::string_view name) const {
      for (const auto& header : headers) {
        if (EqualsIgnoreCase(header.first, name)) return true;
      }
      return false;
    }
  };

  // Queues `response` for requests with this method and exact URL (query included). Queued
  // responses are used in order; the last one then repeats until another is queued.
  void Respond(const std::string& method, const std::string& url, Result<HttpResponse> response) {
    std::lock_guard lock(mutex_);
    Queue& queue = queues_[method + " " + url];
    if (queue.last_served) queue.responses.clear();
    queue.last_served = false;
    queue.responses.push_back(std::move(response));
  }

  // Answers requests that no queued response matches. Unset: such a request fails as a
  // refused connection, as an absent endpoint would. Set it before the code under test runs.
  std::function<Result<HttpResponse>(const HttpRequest&)> handler;

  // Every request so far, in the order they were sent.
  std::vector<Recorded> Requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  size_t RequestCount() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(Recorded{request.method, request.url, request.headers,
                                   std::string(request.body), request.timeout,
                                   request.connect_timeout});
      auto it = queues_.find(request.method + " " + request.url);
      if (it != queues_.end() && !it->second.responses.empty()) {
        Queue& queue = it->second;
        Result<HttpResponse> response = queue.responses.front();
        if (queue.responses.size() > 1) {
          queue.responses.pop_front();
        } else {
          queue.last_served = true;
        }
        return response;
      }
    }
    if (handler) return handler(request);
    return Fail(request.url.substr(0, request.url.find('?')) + ": connection refused");
  }

  static HttpResponse Ok(std::string body, int status = 200, Pairs headers = {}) {
    HttpResponse response;
    response.status = status;
    response.headers = std::move(headers);
    response.body = std::move(body);
    return response;
  }

 private:
  static bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  }

  struct Queue {
    std::deque<Result<HttpResponse>> responses;
    bool last_served = false;  // the one left has been used: the next Respond replaces it
  };

  mutable std::mutex mutex_;
  std::map<std::string, Queue> queues_;
  std::vector<Recorded> requests_;
};

// Long-term keys of AWS's documentation examples.
inline Credentials TestCredentials() {
  Credentials credentials;
  credentials.access_key_id = "AKIDEXAMPLE";
  credentials.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  credentials.source = "test";
  return credentials;
}

// Always the same long-term keys.
class StaticCredentialsProvider : public CredentialsProvider {
 public:
  explicit StaticCredentialsProvider(Credentials credentials)
      : credentials_(std::move(credentials)) {}
  Result<Credentials> Get() override { return credentials_; }

 private:
  Credentials credentials_;
};

}  // namespace runner::aws
