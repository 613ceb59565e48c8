// A scripted fake of GitHub's REST API for tests: an HTTP/1.1 server on 127.0.0.1 (a free port)
// run by one thread. It records every request and answers each from a script: the queued
// responses first, in order, then the handler when one is set, then 201 `{}`. One request per
// connection (the answer says Connection: close); bodies are read by Content-Length.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "runner/hex.h"
#include "tests/test_util.h"

namespace runner::testing {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct FakeRequest {
  std::string method;
  std::string path;    // as sent, query string included
  HeaderList headers;  // names lowercased, values trimmed, in the order sent
  std::string body;

  // The first header named `name` (lowercase), or empty.
  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return {};
  }
};

struct FakeResponse {
  int status = 201;
  HeaderList headers;  // Content-Length and Connection are added
  std::string body = "{}";
  // Close the connection without answering (the client sees a transport error).
  bool hang_up = false;
};

class FakeGitHub {
 public:
  FakeGitHub() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(address);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0 ||
        ::pipe2(wake_, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "fake GitHub: cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeGitHub() {
    if (thread_.joinable()) {
      char byte = 0;
      (void)!::write(wake_[1], &byte, 1);
      thread_.join();
    }
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }

  FakeGitHub(const FakeGitHub&) = delete;
  FakeGitHub& operator=(const FakeGitHub&) = delete;

  int port() const { return port_; }
  // http://127.0.0.1:PORT, no trailing '/'.
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Answers the next request not yet answered by an earlier queued response.
  void Enqueue(FakeResponse response) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(response));
  }

  // Answers requests once the queue is empty; called on the server thread.
  void SetHandler(std::function<FakeResponse(const FakeRequest&)> handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
  }

  // Every request received so far, in order.
  std::vector<FakeRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  // Waits until at least `count` requests arrived; false after `timeout`.
  bool AwaitRequests(std::size_t count,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
  }

 private:
  void Serve() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      // A client that stops sending cannot hold the server (or the destructor) for long.
      timeval limit{5, 0};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
      ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
      FakeRequest request;
      if (ReadRequest(client, request)) Answer(client, request);
      ::close(client);
    }
  }

  static std::string Lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  }

  static std::string Trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
      text.remove_suffix(1);
    }
    return std::string(text);
  }

  static bool ReadRequest(int client, FakeRequest& request) {
    std::string data;
    char buffer[65536];
    std::size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      data.append(buffer, static_cast<std::size_t>(n));
    }
    std::string_view head(data.data(), head_end);
    std::size_t line_end = head.find("\r\n");
    std::string_view request_line = head.substr(0, line_end);
    std::size_t space1 = request_line.find(' ');
    std::size_t space2 = request_line.find(' ', space1 + 1);
    if (space1 == std::string_view::npos || space2 == std::string_view::npos) return false;
    request.method = std::string(request_line.substr(0, space1));
    request.path = std::string(request_line.substr(space1 + 1, space2 - space1 - 1));
    std::size_t content_length = 0;
    while (line_end != std::string_view::npos && line_end < head.size()) {
      std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      std::string_view line = head.substr(
          start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = Lower(std::string(line.substr(0, colon)));
      std::string value = Trim(line.substr(colon + 1));
      if (name == "content-length") {
        std::from_chars(value.data(), value.data() + value.size(), content_length);
      }
      request.headers.emplace_back(std::move(name), std::move(value));
    }
    request.body = data.substr(head_end + 4);
    while (request.body.size() < content_length) {
      ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      request.body.append(buffer, static_cast<std::size_t>(n));
    }
    request.body.resize(content_length);
    return true;
  }

  void Answer(int client, const FakeRequest& request) {
    FakeResponse response;
    std::function<FakeResponse(const FakeRequest&)> handler;
    bool scripted = false;
    {
      std::lock_guard lock(mutex_);
      if (!queue_.empty()) {
        response = std::move(queue_.front());
        queue_.pop_front();
        scripted = true;
      } else {
        handler = handler_;
      }
    }
    if (!scripted && handler) response = handler(request);
    // Recorded before the answer goes out: a client that has its answer finds its request here.
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    arrived_.notify_all();
    if (response.hang_up) return;
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " Fake\r\n";
    for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
    out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    out += "Connection: close\r\n\r\n";
    out += response.body;
    std::size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::deque<FakeResponse> queue_;
  std::function<FakeResponse(const FakeRequest&)> handler_;
  std::vector<FakeRequest> requests_;
};

// GitHub's X-Hub-Signature-256 of a delivery's body.
inline std::string SignDelivery(std::string_view body, std::string_view secret) {
  unsigned char digest[32];
  unsigned int size = sizeof digest;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &size);
  return "sha256=" + HexEncode(std::string_view(reinterpret_cast<char*>(digest), size));
}

// A push delivery of GitHub's own example (shared/testdata), of acme/orders, whose clone URL
// is the repository at `repo_dir`.
inline nlohmann::json PushPayload(const std::string& ref, const std::string& before,
                                  const std::string& after, const std::string& repo_dir) {
  const std::string path = std::string(RUNNER_SOURCE_DIR) +
                           "/../shared/testdata/github-webhooks/push-with-new-branch.payload.json";
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error("GitHub's example push payload not found at " + path +
                             ": it belongs in ../shared/testdata beside the repository");
  }
  nlohmann::json payload = nlohmann::json::parse(ReadTextFile(path));
  payload["ref"] = ref;
  payload["before"] = before;
  payload["after"] = after;
  payload["created"] = before == std::string(40, '0');
  payload["deleted"] = false;
  payload["repository"]["full_name"] = "acme/orders";
  payload["repository"]["clone_url"] = "file://" + repo_dir;
  payload["repository"]["default_branch"] = "main";
  return payload;
}

}  // namespace runner::testing
