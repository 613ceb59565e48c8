// The HTTP/1.1 server under `runner serve` (SPEC section 9): webhooks, pages, live build logs.
//
// Built on Boost.Beast and Asio (Debian's libboost1.74-dev, header-only) for three reasons:
// - full control of the request parser: one body limit that holds for chunked bodies too, and
//   no automatic decompression (a gzip bomb is refused, never inflated);
// - asynchronous I/O, so that a long-lived event stream (a build page following a log) holds no
//   thread;
// - per-connection deadlines on the connection's strand (a request must arrive whole within
//   request_timeout, or it gets 408).
// Debian's cpp-httplib 0.11 was tried and rejected: a thread per connection (8 threads, so 8 open
// log streams block a webhook), a payload limit enforced only with a Content-Length, unbounded
// gzip inflation, and form bodies over 8 KB refused.
//
// Threads: one I/O thread runs every socket; handlers run on a pool of handler_threads, never on
// the I/O thread, so a slow handler stalls no other connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/duration.h"
#include "runner/result.h"

namespace runner::serve {

// A request read whole (header and body) before its handler runs.
struct Request {
  std::string method;  // as sent, e.g. "GET", "POST"
  std::string target;  // as sent: the path and the query, still percent-encoded
  std::string path;    // the target's path, percent-decoded ('+' stays '+'), without the query
  // The query's NAME=VALUE pairs in order, percent-decoded with '+' as a space; a NAME without
  // '=' has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  // Every header field in the order received; names lowercase, values as sent (without the
  // surrounding spaces).
  std::vector<std::pair<std::string, std::string>> headers;
  // The body's bytes exactly as sent (after removing chunked framing): never content-decoded,
  // so a webhook signature can be checked on it.
  std::string body;
  std::string remote;  // the peer's IP address, e.g. "127.0.0.1"

  // The value of the first header named `lowercase_name`, or "" when there is none.
  std::string Header(std::string_view lowercase_name) const;
  // The value of the first query parameter named `name`, or nullopt when there is none.
  std::optional<std::string> Query(std::string_view name) const;
};

// What a handler answers. The server adds Content-Length, Connection when it closes, and
// `X-Content-Type-Options: nosniff`.
struct Response {
  int status = 200;  // 200-599; anything else is answered 500 (and logged)
  std::string content_type = "text/plain; charset=utf-8";  // empty: no Content-Type
  // Further header fields. Content-Length, Transfer-Encoding and Connection belong to the
  // server. A name that is not an HTTP token, or a value with CR, LF or NUL, is answered 500
  // (and logged) instead.
  std::vector<std::pair<std::string, std::string>> headers = {};
  std::string body = {};
};

// A streaming response (server-sent events): the body of a 200 that ends when the stream is
// closed, the client goes away, or the server stops (the connection closes after it; the body
// has no Content-Length). Thread-safe: may be written from any thread, and may outlive its
// connection and the Server harmlessly (then every call is a no-op).
class Stream {
 public:
  virtual ~Stream() = default;
  // Queues `data` to be sent as is. False (and nothing queued) once the stream is closed. A
  // client that lets more than ServerOptions::stream_buffer bytes pile up unsent is
  // disconnected: that Write returns false and the stream is closed.
  virtual bool Write(std::string data) = 0;
  // Ends the response once what was queued is sent. Idempotent.
  virtual void Close() = 0;
  // True after Close(), after the client went away or was disconnected, and after the server
  // stopped accepting.
  virtual bool closed() const = 0;
};

// Answers a request. Runs on a handler thread. An exception is answered 500 and logged to stderr
// (method, path and message; never the body).
using Handler = std::function<Response(const Request&)>;
// Starts a stream. Called once the 200 head (Content-Type: text/event-stream, Cache-Control:
// no-cache, X-Accel-Buffering: no) is queued; keep the shared_ptr to write later. Runs on a
// handler thread: return promptly. An exception closes the stream and is logged.
using StreamHandler = std::function<void(const Request&, std::shared_ptr<Stream>)>;

struct ServerOptions {
  // HOST:PORT with HOST an IP address (IPv6 in brackets: [::1]:8080); port 0 picks a free port.
  std::string listen = "127.0.0.1:8080";
  // A Content-Length above it gets 413 before a byte of the body is read; a chunked body is
  // refused with 413 as soon as it grows beyond it. The connection is closed after either.
  std::size_t max_body = 25 << 20;
  // The request line and header fields together; beyond: 431 and close.
  std::size_t max_header = 64 << 10;
  // From a request's first byte to its last (slowloris); beyond: 408 and close. Also how long a
  // new connection may stay silent before it is closed.
  Duration request_timeout = std::chrono::seconds(20);
  // How long a kept-alive connection may wait for its next request before it is closed; also how
  // long a response or a stream's pending bytes may take to be written.
  Duration idle_timeout = std::chrono::seconds(60);
  int handler_threads = 4;  // >= 1
  // Connections open at once (streams included; a client that left counts until its handler
  // returns); the one beyond gets 503 and is closed. >= 1.
  std::size_t max_connections = 1024;
  // A stream's bytes queued but not yet written; beyond: the client is disconnected.
  std::size_t stream_buffer = 1 << 20;
};

class ServerImpl;  // http_server.cc

// Routes requests to handlers by path and method. Thread-safe after Start, except that Handle,
// HandleStream and Start are not, and Stop must not run concurrently with StopAccepting.
class Server {
 public:
  Server();
  ~Server();  // Stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes `method` requests for `path` to `handler`. The longest matching path wins; a path
  // that ends in '/' matches itself and everything below it, any other only itself. A request
  // whose path no route matches gets 404; one whose route lacks its method gets 405 with Allow.
  // A second handler for the same method and path replaces the first.
  // REQUIRES: before Start. `path` starts with '/'.
  void Handle(std::string method, std::string path, Handler handler);
  // As Handle, for a streaming response.
  void HandleStream(std::string method, std::string path, StreamHandler handler);

  // Binds options.listen and starts the I/O thread and the handler pool. Errors: an invalid
  // listen address or option, or "cannot listen on ADDRESS: REASON" (REASON from errno).
  Status Start(const ServerOptions& options);
  // The port bound by Start (useful with port 0).
  std::uint16_t port() const;

  // Graceful stop, step 1: closes the listening socket (when this returns, connecting fails),
  // closes kept-alive connections waiting for a request, and closes every open stream after its
  // queued bytes. Requests in flight are answered (with Connection: close).
  void StopAccepting();
  // Closes every connection, drops handlers not yet started, waits for running ones and joins
  // every thread. Returns promptly even with streams and clients open. Idempotent.
  void Stop();

 private:
  std::unique_ptr<ServerImpl> impl_;
};

}  // namespace runner::serve
