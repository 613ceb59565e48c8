#include "runner/serve/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runner/fs.h"
#include "tests/e2e_util.h"

namespace runner::serve {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;
};

// A blocking client on a plain socket, reading with deadlines so that no test can hang.
class Client {
 public:
  // `receive_buffer` / `send_buffer`: SO_RCVBUF / SO_SNDBUF, 0 for the kernel's default.
  explicit Client(std::uint16_t port, int receive_buffer = 0, int send_buffer = 0)
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (receive_buffer > 0) {
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (send_buffer > 0) {
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
    }
    timeval send_timeout{.tv_sec = 5, .tv_usec = 0};  // a stuck server fails the test
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }

  bool connected() const { return connected_; }
  int fd() const { return fd_.get(); }
  bool peer_closed() const { return peer_closed_; }
  void Shutdown() { ::shutdown(fd_.get(), SHUT_RDWR); }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads what arrives within `wait`; false once the peer closed (EOF or reset).
  bool Receive(milliseconds wait) {
    if (peer_closed_) return false;
    pollfd ready{.fd = fd_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&ready, 1, static_cast<int>(wait.count())) <= 0) return true;
    char chunk[64 << 10];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n <= 0) {
      peer_closed_ = true;
      return false;
    }
    received_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  // Reads until `text` arrived, then drops what was received up to its end. False when the peer
  // closed or `timeout` passed first.
  bool ReadUntil(std::string_view text, milliseconds timeout = 5s) {
    auto deadline = steady_clock::now() + timeout;
    for (;;) {
      if (std::size_t at = received_.find(text); at != std::string::npos) {
        received_.erase(0, at + text.size());
        return true;
      }
      if (steady_clock::now() > deadline || !Receive(10ms)) return false;
    }
  }

  // True when the peer closes within `timeout` (what it sent before is kept).
  bool AwaitClose(milliseconds timeout = 5s) {
    auto deadline = steady_clock::now() + timeout;
    while (Receive(10ms)) {
      if (steady_clock::now() > deadline) return false;
    }
    return true;
  }

  // The next response (its body by Content-Length), or nullopt on close or timeout.
  std::optional<Reply> ReadReply(milliseconds timeout = 5s) {
    auto deadline = steady_clock::now() + timeout;
    std::size_t head_end;
    while ((head_end = received_.find("\r\n\r\n")) == std::string::npos) {
      if (steady_clock::now() > deadline || !Receive(10ms)) return std::nullopt;
    }
    Reply reply;
    std::string head = received_.substr(0, head_end);
    std::size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) return std::nullopt;
    reply.status = std::stoi(status_line.substr(9, 3));
    std::size_t at = line_end;
    while (at != std::string::npos && at < head.size()) {
      std::size_t next = head.find("\r\n", at + 2);
      std::string line =
          head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
      std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::size_t value_start = line.find_first_not_of(' ', colon + 1);
      reply.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
      at = next;
    }
    received_.erase(0, head_end + 4);
    std::size_t length =
        reply.headers.contains("content-length") ? std::stoul(reply.headers["content-length"]) : 0;
    while (received_.size() < length) {
      if (steady_clock::now() > deadline || !Receive(10ms)) return std::nullopt;
    }
    reply.body = received_.substr(0, length);
    received_.erase(0, length);
    return reply;
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
  bool peer_closed_ = false;
  std::string received_;
};

// Sends one request on a new connection and reads the reply.
std::optional<Reply> Fetch(std::uint16_t port, std::string_view request) {
  Client client(port);
  if (!client.connected() || !client.Send(request)) return std::nullopt;
  return client.ReadReply();
}

// As Fetch; without a reply, a Reply with status 0.
Reply FetchOrEmpty(std::uint16_t port, std::string_view request) {
  return Fetch(port, request).value_or(Reply{});
}

std::string Get(std::string_view target) {
  return fmt::format("GET {} HTTP/1.1\r\nHost: test\r\n\r\n", target);
}

std::string Post(std::string_view target, std::string_view body) {
  return fmt::format("POST {} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{}", target,
                     body.size(), body);
}

Response Text(std::string body) { return Response{.body = std::move(body)}; }

// The streams a stream route opened, and a thread that writes "data: tick N" to all of them.
class Streams {
 public:
  ~Streams() { StopTicking(); }

  StreamHandler Handler() {
    return [this](const Request&, std::shared_ptr<Stream> stream) {
      stream->Write("data: hello\n\n");
      std::lock_guard lock(mu_);
      streams_.push_back(std::move(stream));
    };
  }

  std::size_t size() {
    std::lock_guard lock(mu_);
    return streams_.size();
  }

  std::vector<std::shared_ptr<Stream>> all() {
    std::lock_guard lock(mu_);
    return streams_;
  }

  void StartTicking(milliseconds every) {
    ticker_ = std::jthread([this, every](std::stop_token stop) {
      while (!stop.stop_requested()) {
        int tick = ++ticks_;
        for (const auto& stream : all()) stream->Write(fmt::format("data: tick {}\n\n", tick));
        std::this_thread::sleep_for(every);
      }
    });
  }
  void StopTicking() {
    ticker_.request_stop();
    if (ticker_.joinable()) ticker_.join();
  }
  int ticks() const { return ticks_; }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Stream>> streams_;
  std::atomic<int> ticks_ = 0;
  std::jthread ticker_;
};

// Holds handlers back until Open(). The destructor opens it, so that a failed assertion cannot
// leave a handler thread blocked (Stop waits for running handlers).
class Gate {
 public:
  ~Gate() { Open(); }
  void Open() {
    std::call_once(opened_, [this] { promise_.set_value(); });
  }
  std::shared_future<void> future() const { return future_; }

 private:
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
  std::once_flag opened_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  // Starts `server_` on 127.0.0.1 and a free port.
  void StartServer(ServerOptions options = {}) {
    options.listen = "127.0.0.1:0";
    Status started = server_.Start(options);
    ASSERT_TRUE(started) << started.error();
    port_ = server_.port();
    ASSERT_NE(port_, 0);
  }

  Server server_;
  std::uint16_t port_ = 0;
};

TEST_F(HttpServerTest, RoutesByLongestMatchingPrefixOrExactPath) {
  server_.Handle("GET", "/builds/", [](const Request& r) { return Text("builds " + r.path); });
  server_.Handle("GET", "/builds/special/", [](const Request&) { return Text("special"); });
  server_.Handle("GET", "/static", [](const Request&) { return Text("static"); });
  server_.Handle("POST", "/hooks/github", [](const Request&) { return Text("hook"); });
  server_.Handle("PUT", "/hooks/github", [](const Request&) { return Text("hook"); });
  StartServer();

  auto builds = Fetch(port_, Get("/builds/42"));
  ASSERT_TRUE(builds);
  EXPECT_EQ(builds->status, 200);
  EXPECT_EQ(builds->body, "builds /builds/42");
  EXPECT_EQ(builds->headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(builds->headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(FetchOrEmpty(port_, Get("/builds/")).body, "builds /builds/");
  EXPECT_EQ(FetchOrEmpty(port_, Get("/builds/special/7")).body, "special");
  EXPECT_EQ(FetchOrEmpty(port_, Get("/static")).body, "static");
  EXPECT_EQ(FetchOrEmpty(port_, Post("/hooks/github", "{}")).body, "hook");

  for (const char* target : {"/static/x", "/builds", "/nothing", "/"}) {
    auto missing = Fetch(port_, Get(target));
    ASSERT_TRUE(missing) << target;
    EXPECT_EQ(missing->status, 404) << target;
    EXPECT_THAT(missing->body, HasSubstr("no route")) << target;
    EXPECT_EQ(missing->headers["x-content-type-options"], "nosniff");
  }

  auto wrong_method = Fetch(port_, Get("/hooks/github"));
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(wrong_method->headers["allow"], "POST, PUT");
  EXPECT_THAT(wrong_method->body, HasSubstr("method GET not allowed"));
}

TEST_F(HttpServerTest, DecodesPathAndQueryAndLowercasesHeaderNames) {
  std::promise<Request> seen;
  server_.Handle("GET", "/echo/", [&](const Request& r) {
    seen.set_value(r);
    return Text("ok");
  });
  StartServer();
  std::string target = "/echo/a%20b+c%2Fd?x=1+2&y=%26%3D%C3%A9&flag&&x=second";
  auto reply = Fetch(port_, fmt::format("GET {} HTTP/1.1\r\nHost: test\r\nX-Custom-Header:  Some "
                                        "Value \r\nACCEPT: */*\r\n\r\n",
                                        target));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  Request request = seen.get_future().get();
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, target);
  EXPECT_EQ(request.path, "/echo/a b+c/d");
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(request.query,
            (Pairs{{"x", "1 2"}, {"y", "&=\xC3\xA9"}, {"flag", ""}, {"x", "second"}}));
  EXPECT_EQ(request.Query("x"), "1 2");
  EXPECT_EQ(request.Query("flag"), "");
  EXPECT_EQ(request.Query("none"), std::nullopt);
  EXPECT_EQ(request.headers,
            (Pairs{{"host", "test"}, {"x-custom-header", "Some Value"}, {"accept", "*/*"}}));
  EXPECT_EQ(request.Header("x-custom-header"), "Some Value");
  EXPECT_EQ(request.Header("missing"), "");
  EXPECT_EQ(request.remote, "127.0.0.1");

  auto bad = Fetch(port_, Get("/echo/%zz"));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("percent-encoding"));
  auto garbage = Fetch(port_, "NOT A REQUEST\r\n\r\n");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400);
  EXPECT_THAT(garbage->body, HasSubstr("malformed request"));
}

TEST_F(HttpServerTest, PassesTheBodyRawAndRemovesOnlyChunkedFraming) {
  std::mutex mu;
  std::vector<std::string> bodies;
  server_.Handle("POST", "/hooks/github", [&](const Request& r) {
    std::lock_guard lock(mu);
    bodies.push_back(r.body);
    return Text("got it");
  });
  StartServer();
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  binary += std::string("a=1&b=%20+x\0end", 15);
  auto plain = Fetch(port_, fmt::format("POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                        "application/x-www-form-urlencoded\r\nContent-Length: "
                                        "{}\r\n\r\n{}",
                                        binary.size(), binary));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);

  std::string form(20000, 'f');  // larger than cpp-httplib's 8 KB form limit
  auto big_form =
      Fetch(port_, fmt::format("POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: "
                               "application/x-www-form-urlencoded\r\nContent-Length: "
                               "{}\r\n\r\n{}",
                               form.size(), form));
  ASSERT_TRUE(big_form);
  EXPECT_EQ(big_form->status, 200);

  auto chunked =
      Fetch(port_,
            "POST /hooks/github HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200);

  std::lock_guard lock(mu);
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(bodies[0], binary);
  EXPECT_EQ(bodies[1], form);
  EXPECT_EQ(bodies[2], "hello, world");
}

TEST_F(HttpServerTest, BodyOverTheLimitWithContentLengthGets413BeforeItIsSent) {
  std::atomic<int> calls = 0;
  server_.Handle("POST", "/hooks/github", [&](const Request&) {
    ++calls;
    return Text("accepted");
  });
  StartServer();  // the default limit: 25 MiB
  {
    Client client(port_);
    ASSERT_TRUE(
        client.Send("POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Length: 26214401\r\n\r\n"));
    auto reply = client.ReadReply();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 413);
    EXPECT_EQ(reply->body, "request body larger than 26214400 bytes\n");
    EXPECT_EQ(reply->headers["connection"], "close");
    EXPECT_TRUE(client.AwaitClose());
  }
  {
    // With Expect: 100-continue the client learns it before sending anything either.
    Client client(port_);
    ASSERT_TRUE(
        client.Send("POST /hooks/github HTTP/1.1\r\nHost: t\r\nExpect: "
                    "100-continue\r\nContent-Length: 30000000\r\n\r\n"));
    auto reply = client.ReadReply();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 413);
  }
  {
    // An acceptable length is answered 100 Continue, then the body is read.
    Client client(port_);
    ASSERT_TRUE(
        client.Send("POST /hooks/github HTTP/1.1\r\nHost: t\r\nExpect: "
                    "100-continue\r\nContent-Length: 5\r\n\r\n"));
    auto interim = client.ReadReply();
    ASSERT_TRUE(interim);
    EXPECT_EQ(interim->status, 100);
    ASSERT_TRUE(client.Send("hello"));
    auto reply = client.ReadReply();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 200);
  }
  // Exactly at the limit is accepted.
  std::string at_limit(25 << 20, 'x');
  auto reply = Fetch(port_, Post("/hooks/github", at_limit));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(calls, 2);
}

TEST_F(HttpServerTest, UnboundedChunkedBodyIsCutOffAfterTheLimit) {
  std::atomic<int> calls = 0;
  server_.Handle("POST", "/hooks/github", [&](const Request&) {
    ++calls;
    return Text("accepted");
  });
  const std::size_t limit = 1 << 20;
  StartServer({.max_body = limit});

  Client client(port_, 0, 64 << 10);
  ASSERT_TRUE(
      client.Send("POST /hooks/github HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n"));
  std::string chunk = fmt::format("{:x}\r\n{}\r\n", 64 << 10, std::string(64 << 10, 'x'));
  std::size_t sent = 0;
  int error = 0;
  while (sent < (300u << 20)) {
    ssize_t n = ::send(client.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0) {
      error = errno;
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  // The server read the limit; what else got out sat in the socket buffers when the server
  // closed: the client's (64 KiB) and the server's receive buffer (here about 0.5 MiB).
  EXPECT_TRUE(error == ECONNRESET || error == EPIPE) << ErrnoText(error) << " after " << sent;
  EXPECT_LT(sent, limit + (4u << 20));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(reply->body, "request body larger than 1048576 bytes\n");
  EXPECT_EQ(calls, 0);
}

TEST_F(HttpServerTest, CompressedBodyGets415AndOtherTransferCodings501) {
  std::atomic<int> calls = 0;
  server_.Handle("POST", "/hooks/github", [&](const Request&) {
    ++calls;
    return Text("accepted");
  });
  StartServer();
  Client client(port_);
  ASSERT_TRUE(
      client.Send("POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Encoding: "
                  "gzip\r\nContent-Length: 20\r\n\r\n"));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 415);
  EXPECT_THAT(reply->body, HasSubstr("Content-Encoding: gzip"));
  EXPECT_TRUE(client.AwaitClose());

  auto gzip_chunked = Fetch(port_,
                            "POST /hooks/github HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, "
                            "chunked\r\n\r\n0\r\n\r\n");
  ASSERT_TRUE(gzip_chunked);
  EXPECT_EQ(gzip_chunked->status, 501);

  auto identity = Fetch(port_,
                        "POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Encoding: "
                        "identity\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_TRUE(identity);
  EXPECT_EQ(identity->status, 200);
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpServerTest, HeaderOverTheLimitGets431) {
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer({.max_header = 1024});
  auto reply = Fetch(
      port_, fmt::format("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", std::string(2000, 'b')));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 431);
  EXPECT_EQ(reply->body, "request header larger than 1024 bytes\n");
  EXPECT_EQ(FetchOrEmpty(port_, Get("/")).status, 200);
}

TEST_F(HttpServerTest, IdleAndSlowClientsAreCutOffWhileOthersAreServed) {
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer({.request_timeout = 300ms});

  // The slow client's first request is quick: its second one, on the kept-alive connection,
  // is sent one byte every 50 ms, so only the deadline from its first byte cuts it off.
  Client slow(port_);
  ASSERT_TRUE(slow.Send(Get("/")));
  ASSERT_TRUE(slow.ReadReply());
  auto start = steady_clock::now();
  Client idle(port_);
  ASSERT_TRUE(idle.connected());
  std::string slow_request = "GET / HTTP/1.1\r\nHost: t\r\nX-Padding: " + std::string(200, 'p');
  std::optional<milliseconds> idle_closed, slow_closed;
  int served = 0;
  for (std::size_t i = 0; (!idle_closed || !slow_closed) && steady_clock::now() - start < 3s; ++i) {
    auto elapsed = [&] {
      return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
    };
    if (!slow_closed) {
      slow.Send(slow_request.substr(i % slow_request.size(), 1));  // one byte every 50 ms
      if (!slow.Receive(0ms)) slow_closed = elapsed();
    }
    if (!idle_closed && !idle.Receive(0ms)) idle_closed = elapsed();
    auto reply = Fetch(port_, Get("/"));
    if (reply && reply->status == 200) ++served;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(idle_closed && slow_closed);
  EXPECT_GE(*idle_closed, 290ms);
  EXPECT_LT(*idle_closed, 1500ms);
  EXPECT_GE(*slow_closed, 290ms);
  EXPECT_LT(*slow_closed, 1500ms);
  auto timed_out = slow.ReadReply();
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->status, 408);
  EXPECT_EQ(timed_out->body, "request not received within 300ms\n");
  EXPECT_GE(served, 5);  // one per 50 ms round while the two were held
}

TEST_F(HttpServerTest, FiftyOpenStreamsDoNotBlockOtherRequests) {
  Streams streams;
  server_.HandleStream("GET", "/builds/events", streams.Handler());
  server_.Handle("POST", "/hooks/github", [](const Request&) { return Text("queued"); });
  StartServer({.handler_threads = 4});

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->Send(Get("/builds/events")));
  }
  for (auto& client : clients) {
    auto head = client->ReadReply();
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->headers["content-type"], "text/event-stream");
    EXPECT_EQ(head->headers["cache-control"], "no-cache");
    EXPECT_EQ(head->headers["x-accel-buffering"], "no");
    ASSERT_TRUE(client->ReadUntil("data: hello\n\n"));
  }
  ASSERT_TRUE(testing::AwaitCondition([&] { return streams.size() == 50; }));
  streams.StartTicking(20ms);

  auto start = steady_clock::now();
  auto hook = Fetch(port_, Post("/hooks/github", "{}"));
  ASSERT_TRUE(hook);
  EXPECT_EQ(hook->status, 200);
  EXPECT_EQ(hook->body, "queued");
  EXPECT_LT(steady_clock::now() - start, 1s);

  int next_tick = streams.ticks() + 1;
  for (auto& client : clients) {
    EXPECT_TRUE(client->ReadUntil(fmt::format("data: tick {}\n\n", next_tick)));
  }
  for (const auto& stream : streams.all()) EXPECT_FALSE(stream->closed());
}

TEST_F(HttpServerTest, StreamClosesWhenTheClientLeavesOrFallsBehind) {
  Streams streams;
  server_.HandleStream("GET", "/events", streams.Handler());
  StartServer({.stream_buffer = 64 << 10});

  Client leaving(port_);
  ASSERT_TRUE(leaving.Send(Get("/events")));
  ASSERT_TRUE(leaving.ReadUntil("data: hello\n\n"));
  ASSERT_TRUE(testing::AwaitCondition([&] { return streams.size() == 1; }));
  leaving.Shutdown();
  std::shared_ptr<Stream> left = streams.all()[0];
  EXPECT_TRUE(testing::AwaitCondition([&] { return left->closed(); }));
  EXPECT_FALSE(left->Write("data: nobody\n\n"));

  // A client that reads nothing: once the kernel's buffers are full, bytes pile up in the
  // stream until it is cut off.
  Client stalled(port_, 4096);
  ASSERT_TRUE(stalled.Send(Get("/events")));
  ASSERT_TRUE(testing::AwaitCondition([&] { return streams.size() == 2; }));
  std::shared_ptr<Stream> stream = streams.all()[1];
  std::string event = "data: " + std::string(16 << 10, 'e') + "\n\n";
  std::size_t written = 0;
  while (stream->Write(event) && written < (256u << 20)) written += event.size();
  EXPECT_TRUE(stream->closed());
  EXPECT_LT(written, 256u << 20);
  EXPECT_TRUE(stalled.AwaitClose());
}

TEST_F(HttpServerTest, ConnectionBeyondTheLimitGets503) {
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer({.max_connections = 2});
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(open.back()->Send(Get("/")));
    ASSERT_TRUE(open.back()->ReadReply());  // kept alive, so still counted
  }
  Client extra(port_);
  auto refused = extra.ReadReply();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->body, "too many connections (at most 2): try again later\n");
  EXPECT_TRUE(extra.AwaitClose());

  open.pop_back();  // frees a slot once the server sees the close
  EXPECT_TRUE(testing::AwaitCondition([&] {
    auto reply = Fetch(port_, Get("/"));
    return reply && reply->status == 200;
  }));
}

TEST_F(HttpServerTest, ClientThatLeftCountsUntilItsHandlerReturns) {
  std::promise<std::shared_ptr<Stream>> started;
  Gate gate;
  server_.HandleStream(
      "GET", "/events",
      [&started, opened = gate.future()](const Request&, std::shared_ptr<Stream> s) {
        started.set_value(s);
        opened.wait();
      });
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer({.handler_threads = 1, .max_connections = 1});
  {
    Client leaving(port_);
    ASSERT_TRUE(leaving.Send(Get("/events")));
    std::shared_ptr<Stream> stream = started.get_future().get();
    leaving.Shutdown();
    ASSERT_TRUE(testing::AwaitCondition([&] { return stream->closed(); }));
  }
  // The stream's handler still runs for the client that left: its slot stays taken, so no
  // other handler queues behind it (a new client is refused at once instead of waiting).
  auto refused = Fetch(port_, Get("/"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  gate.Open();
  EXPECT_TRUE(testing::AwaitCondition([&] { return FetchOrEmpty(port_, Get("/")).status == 200; }));
}

TEST_F(HttpServerTest, KeepsHttp11ConnectionsAliveAndClosesHttp10) {
  std::atomic<int> calls = 0;
  server_.Handle("GET", "/", [&](const Request&) { return Text(fmt::format("call {}", ++calls)); });
  StartServer();
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/")));
  auto first = client.ReadReply();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "call 1");
  EXPECT_FALSE(first->headers.contains("connection"));
  ASSERT_TRUE(client.Send(Get("/")));
  auto second = client.ReadReply();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "call 2");

  Client old(port_);
  ASSERT_TRUE(old.Send("GET / HTTP/1.0\r\n\r\n"));
  auto reply = old.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->headers["connection"], "close");
  EXPECT_TRUE(old.AwaitClose());
}

TEST_F(HttpServerTest, HandlerThatThrowsGets500AndTheLogHoldsNoBody) {
  server_.Handle("POST", "/boom",
                 [](const Request&) -> Response { throw std::runtime_error("kaboom"); });
  server_.Handle("GET", "/split", [](const Request&) {
    return Response{.headers = {{"X-Evil", "a\r\nSet-Cookie: b"}}, .body = "x"};
  });
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer();
  Client client(port_);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(client.Send(Post("/boom", "secret-body-123")));
  auto reply = client.ReadReply();
  ASSERT_TRUE(client.Send(Get("/split")));
  auto split = client.ReadReply();
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 500);
  EXPECT_EQ(reply->body, "internal server error\n");
  EXPECT_THAT(log, HasSubstr("POST /boom: the handler threw: kaboom"));
  EXPECT_THAT(log, Not(HasSubstr("secret-body-123")));
  ASSERT_TRUE(split);
  EXPECT_EQ(split->status, 500);
  EXPECT_FALSE(split->headers.contains("set-cookie"));
  EXPECT_THAT(log, HasSubstr("GET /split: the handler's response is invalid"));
  // The connection is still usable.
  ASSERT_TRUE(client.Send(Get("/")));
  auto after = client.ReadReply();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "root");
}

TEST_F(HttpServerTest, SlowHandlerDoesNotStallOtherConnections) {
  std::atomic<bool> entered = false;
  Gate gate;
  server_.Handle("GET", "/slow", [&entered, opened = gate.future()](const Request&) {
    entered = true;
    opened.wait();
    return Text("slow");
  });
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer({.handler_threads = 2});
  Client slow(port_);
  ASSERT_TRUE(slow.Send(Get("/slow")));
  ASSERT_TRUE(testing::AwaitCondition([&] { return entered.load(); }));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(FetchOrEmpty(port_, Get("/")).body, "root");
  gate.Open();
  auto reply = slow.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "slow");
}

TEST_F(HttpServerTest, StopAcceptingFinishesRequestsInFlightAndClosesStreams) {
  Streams streams;
  std::atomic<bool> entered = false;
  Gate gate;
  server_.HandleStream("GET", "/events", streams.Handler());
  server_.Handle("GET", "/slow", [&entered, opened = gate.future()](const Request&) {
    entered = true;
    opened.wait();
    return Text("finished");
  });
  server_.Handle("GET", "/", [](const Request&) { return Text("root"); });
  StartServer();

  Client listener(port_);
  ASSERT_TRUE(listener.Send(Get("/events")));
  ASSERT_TRUE(listener.ReadUntil("data: hello\n\n"));
  ASSERT_TRUE(testing::AwaitCondition([&] { return streams.size() == 1; }));
  Client kept_alive(port_);
  ASSERT_TRUE(kept_alive.Send(Get("/")));
  ASSERT_TRUE(kept_alive.ReadReply());
  Client in_flight(port_);
  ASSERT_TRUE(in_flight.Send(Get("/slow")));
  ASSERT_TRUE(testing::AwaitCondition([&] { return entered.load(); }));
  ASSERT_TRUE(streams.all()[0]->Write("data: last\n\n"));

  server_.StopAccepting();
  EXPECT_FALSE(Client(port_).connected());
  EXPECT_TRUE(listener.ReadUntil("data: last\n\n"));
  EXPECT_TRUE(listener.AwaitClose());
  EXPECT_TRUE(streams.all()[0]->closed());
  EXPECT_TRUE(kept_alive.AwaitClose());

  gate.Open();
  auto reply = in_flight.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "finished");
  EXPECT_EQ(reply->headers["connection"], "close");
  EXPECT_TRUE(in_flight.AwaitClose());
}

TEST_F(HttpServerTest, StopReturnsPromptlyWithStreamsAndIdleClientsOpen) {
  Streams streams;
  server_.HandleStream("GET", "/events", streams.Handler());
  StartServer();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->Send(Get("/events")));
    ASSERT_TRUE(clients.back()->ReadUntil("data: hello\n\n"));
  }
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<Client>(port_));  // idle
    ASSERT_TRUE(clients.back()->connected());
  }
  ASSERT_TRUE(testing::AwaitCondition([&] { return streams.size() == 5; }));
  streams.StartTicking(5ms);  // writes race with Stop

  auto start = steady_clock::now();
  server_.Stop();
  EXPECT_LT(steady_clock::now() - start, 1s);
  for (auto& client : clients) EXPECT_TRUE(client->AwaitClose(2s));
  EXPECT_FALSE(Client(port_).connected());
  // The streams outlive their connections harmlessly.
  streams.StopTicking();
  for (const auto& stream : streams.all()) {
    EXPECT_TRUE(stream->closed());
    EXPECT_FALSE(stream->Write("data: late\n\n"));
    stream->Close();
  }
  server_.Stop();  // idempotent
}

TEST_F(HttpServerTest, StartReportsTheAddressAndTheReason) {
  StartServer();
  Server second;
  std::string listen = fmt::format("127.0.0.1:{}", port_);
  Status taken = second.Start({.listen = listen});
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error(), fmt::format("cannot listen on {}: Address already in use", listen));

  EXPECT_THAT(second.Start({.listen = "127.0.0.1"}).error(), HasSubstr("has no port"));
  EXPECT_THAT(second.Start({.listen = "localhost:80"}).error(), HasSubstr("not an IP address"));
  EXPECT_THAT(second.Start({.listen = "127.0.0.1:99999"}).error(), HasSubstr("not a port"));
  EXPECT_THAT(second.Start({.listen = "::1:80"}).error(), HasSubstr("in brackets"));
}

}  // namespace
}  // namespace runner::serve
