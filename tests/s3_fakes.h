// A scripted HttpClient and a fixed CredentialsProvider, for testing the AWS clients without a
// network.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "runner/aws/credentials.h"
#include "runner/aws/http.h"

namespace runner::aws::s3_testing {

// Records every request (with a copy of its body) and answers with `handler`, which by default
// returns 200 with an empty body. Thread-safe.
class FakeHttpClient : public HttpClient {
 public:
  struct Recorded {
    HttpRequest request;
    std::string body;  // request.body points at the caller's bytes; this is a copy

    std::string Header(std::string_view name) const {
      for (const auto& [key, value] : request.headers) {
        if (key.size() == name.size() &&
            std::equal(key.begin(), key.end(), name.begin(),
                       [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
          return value;
        }
      }
      return {};
    }
    bool HasHeader(std::string_view name) const {
      for (const auto& [key, value] : request.headers) {
        if (key.size() == name.size() &&
            std::equal(key.begin(), key.end(), name.begin(),
                       [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
          return true;
        }
      }
      return false;
    }
  };

  using Handler = std::function<Result<HttpResponse>(const HttpRequest&, int index)>;

  explicit FakeHttpClient(Handler handler = nullptr) : handler_(std::move(handler)) {}

  Result<HttpResponse> Send(const HttpRequest& request) override {
    int index;
    {
      std::lock_guard lock(mutex_);
      index = static_cast<int>(requests_.size());
      Recorded recorded{request, std::string(request.body)};
      recorded.request.body = {};
      requests_.push_back(std::move(recorded));
    }
    if (!handler_) return HttpResponse{200, {}, ""};
    return handler_(request, index);
  }

  std::vector<Recorded> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  Handler handler_;
  mutable std::mutex mutex_;
  std::vector<Recorded> requests_;
};

class StaticCredentials : public CredentialsProvider {
 public:
  explicit StaticCredentials(std::string key_id = "AKIDEXAMPLE",
                             std::string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY") {
    credentials_.access_key_id = std::move(key_id);
    credentials_.secret_access_key = std::move(secret);
    credentials_.source = "test";
  }
  Result<Credentials> Get() override { return credentials_; }

 private:
  Credentials credentials_;
};

}  // namespace runner::aws::s3_testing
