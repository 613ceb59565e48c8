#include "runner/serve/http_server.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>

#include "runner/hex.h"
#include "runner/worker_pool.h"

namespace runner::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::string Request::Header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return value;
  }
  return "";
}

std::optional<std::string> Request::Query(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

namespace {

constexpr std::size_t kReadSize = 16 << 10;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// The stream's body ends when the connection closes, so it needs neither a length nor chunks.
constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "X-Accel-Buffering: no\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Connection: close\r\n"
    "\r\n";

std::string ToString(beast::string_view text) { return std::string(text.data(), text.size()); }

std::string Lowercase(beast::string_view text) {
  std::string out = ToString(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// %XX decoded; with `plus_is_space` (query and form encoding) '+' is a space too. Nullopt when a
// '%' is not followed by two hex digits.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      std::optional<std::string> byte = HexDecode(text.substr(i + 1, 2));
      if (!byte || byte->size() != 1) return std::nullopt;
      out += *byte;
      i += 2;
    } else {
      out += plus_is_space && text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    std::size_t eq = piece.find('=');
    std::optional<std::string> name = PercentDecode(piece.substr(0, eq), true);
    std::optional<std::string> value =
        PercentDecode(eq == std::string_view::npos ? "" : piece.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

// An HTTP token (RFC 9110 section 5.6.2).
bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// A value that cannot end its header line early (response splitting).
bool IsFieldValue(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// What makes `response` unsendable, or "".
std::string ResponseProblem(const Response& response) {
  if (response.status < 200 || response.status > 599) {
    return fmt::format("status {} is not a final status (200-599)", response.status);
  }
  if (!IsFieldValue(response.content_type)) return "the Content-Type holds CR, LF or NUL";
  for (const auto& [name, value] : response.headers) {
    if (!IsToken(name)) return fmt::format("the header name '{}' is not an HTTP token", name);
    if (!IsFieldValue(value)) return fmt::format("the header {} holds CR, LF or NUL", name);
  }
  return "";
}

Response PlainText(int status, std::string text,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  return Response{.status = status, .headers = std::move(headers), .body = std::move(text) + "\n"};
}

http::response<http::string_body> ToBeast(Response response, bool keep_alive) {
  http::response<http::string_body> out;
  out.version(11);
  out.result(static_cast<unsigned>(response.status));
  if (!response.content_type.empty()) out.set(http::field::content_type, response.content_type);
  out.set("X-Content-Type-Options", "nosniff");
  for (const auto& [name, value] : response.headers) out.insert(name, value);
  out.body() = std::move(response.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

// Names the path as sent (still percent-encoded, so it cannot forge a log line) without the
// query, which may hold a token.
void LogHandlerFailure(const Request& request, std::string_view what) {
  std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
  std::fprintf(stderr, "runner serve: %s %.*s: %.*s\n", request.method.c_str(),
               static_cast<int>(path.size()), path.data(), static_cast<int>(what.size()),
               what.data());
}

Response CallHandler(const Handler& handler, const Request& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    LogHandlerFailure(request, fmt::format("the handler threw: {}", e.what()));
  } catch (...) {
    LogHandlerFailure(request, "the handler threw something that is not a std::exception");
  }
  return PlainText(500, "internal server error");
}

void CallStreamHandler(const StreamHandler& handler, const Request& request,
                       const std::shared_ptr<Stream>& stream) {
  try {
    handler(request, stream);
    return;
  } catch (const std::exception& e) {
    LogHandlerFailure(request, fmt::format("the stream handler threw: {}", e.what()));
  } catch (...) {
    LogHandlerFailure(request, "the stream handler threw something that is not a std::exception");
  }
  stream->Close();
}

const boost::system::error_category& HttpErrors() {
  return http::make_error_code(http::error::end_of_stream).category();
}

Result<tcp::endpoint> ParseListen(std::string_view listen) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return Fail(fmt::format("listen address '{}' has no port: write HOST:PORT, e.g. 127.0.0.1:8080",
                            listen));
  }
  std::string_view host = listen.substr(0, colon);
  std::string_view port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Fail(fmt::format(
        "listen address '{}': write an IPv6 address in brackets, e.g. [::1]:8080", listen));
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return Fail(
        fmt::format("listen address '{}': '{}' is not a port (0-65535)", listen, port_text));
  }
  error_code bad;
  asio::ip::address address = asio::ip::make_address(std::string(host), bad);
  if (bad) {
    return Fail(fmt::format("listen address '{}': '{}' is not an IP address", listen, host));
  }
  return tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

class Connection;

// Methods to handlers, for one path.
using Route = std::map<std::string, std::variant<Handler, StreamHandler>, std::less<>>;

}  // namespace

class ServerImpl {
 public:
  void Accept();
  void Admit(tcp::socket socket);
  void Forget(Connection* connection);
  // The route with the longest path matching `path`, or null.
  const Route* FindRoute(std::string_view path) const;

  std::map<std::string, Route, std::less<>> routes;  // by path
  ServerOptions options;
  std::unique_ptr<asio::io_context> io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;           // on its own strand
  std::optional<asio::steady_timer> accept_retry;  // on the acceptor's strand
  std::thread io_thread;
  std::unique_ptr<WorkerPool> pool;
  std::atomic<bool> stopping = false;  // StopAccepting or Stop ran
  std::atomic<std::uint16_t> port = 0;
  std::mutex mu;
  // The connections that count against max_connections: open ones, and closed ones whose
  // handler still runs (Connection::handler_pending_). Guarded by mu.
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;
};

namespace {

// The stream of one connection. Its state is guarded by mu_; the bytes are written by the
// connection on its strand (Connection::Pump).
class StreamImpl final : public Stream {
 public:
  StreamImpl(std::weak_ptr<Connection> connection, std::size_t limit)
      : connection_(std::move(connection)), limit_(limit) {}

  bool Write(std::string data) override;
  void Close() override;
  bool closed() const override;

  struct Batch {
    std::vector<std::string> data;
    bool ending = false;  // Close() was called: close the connection once `data` is sent
  };
  // The bytes queued since the last call. On the connection's strand.
  Batch Take();
  // `bytes` of what Take returned are written.
  void Sent(std::size_t bytes);
  // The connection closed: every later call is a no-op.
  void Detach();

 private:
  // Makes sure the connection runs Pump soon. REQUIRES: mu_ held.
  void SchedulePump();

  mutable std::mutex mu_;
  // Locked only with mu_ held and closed_ false: Stop detaches every stream before it
  // destroys the io_context, so no connection is reached (or kept alive) through here after.
  std::weak_ptr<Connection> connection_;
  const std::size_t limit_;
  std::deque<std::string> queue_;
  std::size_t pending_ = 0;  // queued or being written
  bool closed_ = false;
  bool ending_ = false;
  bool pump_scheduled_ = false;
};

// One client connection. Every member function runs on the socket's strand, except that Stop
// calls Close once the I/O thread is joined.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerImpl& server, tcp::socket socket, std::string remote)
      : server_(server),
        options_(server.options),
        socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        remote_(std::move(remote)) {}

  asio::any_io_executor executor() { return socket_.get_executor(); }

  void Start() { AwaitRequest(options_.request_timeout); }
  // StopAccepting: a connection waiting for a request closes; a stream ends.
  void OnStopAccepting();
  // Writes what the stream has queued.
  void Pump();
  void Close();

 private:
  enum class Phase { kAwaiting, kReading, kHandling, kWriting, kStreaming, kClosed };

  // The handler for this connection returned (posted by its handler thread).
  void HandlerReturned();
  bool closed() const { return phase_ == Phase::kClosed; }
  // Waits (at most `limit`) for the first byte of the next request.
  void AwaitRequest(Duration limit);
  void ReadHeader();
  void OnHeader();
  void ReadBody();
  void FailRead(error_code ec);
  void OnRequest();
  void BeginStream(const StreamHandler& handler, Request request);
  void WatchForHangUp();
  // Answers `response`, then reads the next request unless `close` or the request ends the
  // connection.
  void SendResponse(Response response, bool close);
  void SendError(int status, std::string text, bool close,
                 std::vector<std::pair<std::string, std::string>> headers = {}) {
    SendResponse(PlainText(status, std::move(text), std::move(headers)), close);
  }
  std::string BodyTooLarge() const {
    return fmt::format("request body larger than {} bytes", options_.max_body);
  }
  void ArmDeadline(Duration limit);
  void DisarmDeadline();
  void OnDeadline();

  ServerImpl& server_;
  const ServerOptions& options_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  std::uint64_t deadline_generation_ = 0;  // a timer that fired for an older phase is ignored
  bool timed_out_ = false;                 // the deadline cut the request being read
  const std::string remote_;
  Phase phase_ = Phase::kAwaiting;
  bool keep_alive_ = false;
  // A handler for this connection is queued or running. The connection counts against
  // max_connections until it returns, even once closed (a stream's client may leave before its
  // handler ran), so that the handler pool never holds more than max_connections tasks: a full
  // pool's Submit would block the I/O thread.
  bool handler_pending_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;  // being written
  std::shared_ptr<StreamImpl> stream_;
  std::vector<std::string> stream_out_;  // being written
  bool stream_writing_ = false;
  std::array<char, 1024> discard_;  // what a streaming client sends
};

bool StreamImpl::Write(std::string data) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  pending_ += data.size();
  if (pending_ > limit_) {
    closed_ = true;
    queue_.clear();
    if (auto connection = connection_.lock()) {
      asio::post(connection->executor(), [connection] { connection->Close(); });
    }
    return false;
  }
  queue_.push_back(std::move(data));
  SchedulePump();
  return true;
}

void StreamImpl::Close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  ending_ = true;
  SchedulePump();
}

bool StreamImpl::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

StreamImpl::Batch StreamImpl::Take() {
  std::lock_guard lock(mu_);
  pump_scheduled_ = false;
  Batch batch{
      .data = {std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end())},
      .ending = ending_};
  queue_.clear();
  return batch;
}

void StreamImpl::Sent(std::size_t bytes) {
  std::lock_guard lock(mu_);
  pending_ -= std::min(bytes, pending_);
}

void StreamImpl::Detach() {
  std::lock_guard lock(mu_);
  closed_ = true;
  queue_.clear();
  connection_.reset();
}

void StreamImpl::SchedulePump() {
  if (pump_scheduled_) return;
  if (auto connection = connection_.lock()) {
    pump_scheduled_ = true;
    asio::post(connection->executor(), [connection] { connection->Pump(); });
  }
}

void Connection::AwaitRequest(Duration limit) {
  if (server_.stopping) return Close();
  if (buffer_.size() > 0) return ReadHeader();  // the client sent it with the previous one
  phase_ = Phase::kAwaiting;
  ArmDeadline(limit);
  socket_.async_read_some(buffer_.prepare(kReadSize),
                          [self = shared_from_this()](error_code ec, std::size_t size) {
                            if (self->closed()) return;
                            if (ec) return self->Close();
                            self->buffer_.commit(size);
                            self->ReadHeader();
                          });
}

void Connection::ReadHeader() {
  phase_ = Phase::kReading;
  ArmDeadline(options_.request_timeout);
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(options_.max_header, std::numeric_limits<std::uint32_t>::max())));
  // Beast would refuse a large Content-Length while parsing the header, before this connection
  // can name the limit in a 413; OnHeader judges it and sets the real limit for the body.
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, std::size_t) {
                            if (self->closed()) return;
                            if (ec) return self->FailRead(ec);
                            self->OnHeader();
                          });
}

void Connection::OnHeader() {
  const auto& request = parser_->get();
  keep_alive_ = request.version() >= 11 && request.keep_alive();
  // The server never inflates: a compressed body could be any size once decoded.
  for (const auto& field : request) {
    if (field.name() == http::field::content_encoding &&
        !beast::iequals(field.value(), "identity")) {
      return SendError(415,
                       fmt::format("request bodies must not be compressed (Content-Encoding: {})",
                                   ToString(field.value())),
                       true);
    }
  }
  if (request.count(http::field::transfer_encoding) > 0 &&
      (request.count(http::field::transfer_encoding) > 1 ||
       !beast::iequals(request[http::field::transfer_encoding], "chunked"))) {
    return SendError(501,
                     fmt::format("Transfer-Encoding {} is not supported: only chunked is",
                                 ToString(request[http::field::transfer_encoding])),
                     true);
  }
  if (boost::optional<std::uint64_t> length = parser_->content_length();
      length && *length > options_.max_body) {
    return SendError(413, BodyTooLarge(), true);
  }
  // For a chunked body Beast counts the decoded bytes against this as they arrive.
  parser_->body_limit(options_.max_body);
  if (request.version() >= 11 && !parser_->is_done() &&
      beast::iequals(request[http::field::expect], "100-continue")) {
    asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = shared_from_this()](error_code ec, std::size_t) {
                        if (self->closed()) return;
                        if (ec) return self->Close();
                        self->ReadBody();
                      });
    return;
  }
  ReadBody();
}

void Connection::ReadBody() {
  if (parser_->is_done()) return OnRequest();
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](error_code ec, std::size_t) {
                     if (self->closed()) return;
                     if (ec) return self->FailRead(ec);
                     self->OnRequest();
                   });
}

void Connection::FailRead(error_code ec) {
  if (timed_out_) {
    return SendError(
        408,
        fmt::format("request not received within {}", FormatDuration(options_.request_timeout)),
        true);
  }
  if (ec == http::error::header_limit) {
    return SendError(431, fmt::format("request header larger than {} bytes", options_.max_header),
                     true);
  }
  if (ec == http::error::body_limit) return SendError(413, BodyTooLarge(), true);
  // The client went away (mid-request or not): nobody to answer.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec.category() != HttpErrors()) {
    return Close();
  }
  SendError(400, fmt::format("malformed request: {}", ec.message()), true);
}

void Connection::OnRequest() {
  DisarmDeadline();
  phase_ = Phase::kHandling;
  http::request<http::string_body> message = parser_->release();
  parser_.reset();
  Request request;
  request.method = ToString(message.method_string());
  request.target = ToString(message.target());
  std::string_view target = request.target;
  std::size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  if (!raw_path.starts_with('/')) {
    return SendError(400, "the request target must be a path that starts with /", false);
  }
  std::optional<std::string> path = PercentDecode(raw_path, false);
  auto query = ParseQuery(question == std::string_view::npos ? std::string_view()
                                                             : target.substr(question + 1));
  if (!path || !query) {
    return SendError(400, "malformed percent-encoding in the request target", false);
  }
  request.path = std::move(*path);
  request.query = std::move(*query);
  for (const auto& field : message) {
    request.headers.emplace_back(Lowercase(field.name_string()), ToString(field.value()));
  }
  request.body = std::move(message.body());
  request.remote = remote_;

  const Route* route = server_.FindRoute(request.path);
  if (route == nullptr) return SendError(404, "nothing here: no route matches this path", false);
  auto found = route->find(request.method);
  if (found == route->end()) {
    std::string allow;
    for (const auto& [method, handler] : *route) allow += (allow.empty() ? "" : ", ") + method;
    return SendError(405,
                     fmt::format("method {} not allowed here (allowed: {})", request.method, allow),
                     false, {{"Allow", allow}});
  }
  if (const auto* stream_handler = std::get_if<StreamHandler>(&found->second)) {
    return BeginStream(*stream_handler, std::move(request));
  }
  // Routes are fixed once the server runs, so the handler outlives every request.
  const Handler* handler = &std::get<Handler>(found->second);
  handler_pending_ = true;
  server_.pool->Submit([self = shared_from_this(), handler, request = std::move(request)] {
    Response response = CallHandler(*handler, request);
    if (std::string problem = ResponseProblem(response); !problem.empty()) {
      LogHandlerFailure(request, fmt::format("the handler's response is invalid: {}", problem));
      response = PlainText(500, "internal server error");
    }
    asio::post(self->executor(), [self, response = std::move(response)]() mutable {
      self->HandlerReturned();
      self->SendResponse(std::move(response), false);
    });
  });
}

void Connection::BeginStream(const StreamHandler& handler, Request request) {
  phase_ = Phase::kStreaming;
  stream_ = std::make_shared<StreamImpl>(weak_from_this(), options_.stream_buffer);
  stream_->Write(std::string(kStreamHead));
  WatchForHangUp();
  handler_pending_ = true;
  server_.pool->Submit(
      [self = shared_from_this(), &handler, stream = stream_, request = std::move(request)] {
        CallStreamHandler(handler, request, stream);
        asio::post(self->executor(), [self] { self->HandlerReturned(); });
      });
}

// Keeps a read pending while streaming, so that a client that hangs up is noticed even when
// nothing is being written.
void Connection::WatchForHangUp() {
  socket_.async_read_some(asio::buffer(discard_),
                          [self = shared_from_this()](error_code ec, std::size_t) {
                            if (self->closed()) return;
                            if (ec) return self->Close();
                            self->WatchForHangUp();
                          });
}

void Connection::Pump() {
  if (closed() || stream_writing_) return;  // the write in flight pumps again when it is done
  StreamImpl::Batch batch = stream_->Take();
  if (batch.data.empty()) {
    if (batch.ending) Close();
    return;
  }
  stream_out_ = std::move(batch.data);
  std::vector<asio::const_buffer> buffers;
  for (const std::string& piece : stream_out_) buffers.push_back(asio::buffer(piece));
  stream_writing_ = true;
  ArmDeadline(options_.idle_timeout);
  asio::async_write(socket_, buffers, [self = shared_from_this()](error_code ec, std::size_t size) {
    if (self->closed()) return;
    self->stream_writing_ = false;
    self->DisarmDeadline();
    if (ec) return self->Close();
    self->stream_->Sent(size);
    self->stream_out_.clear();
    self->Pump();
  });
}

void Connection::SendResponse(Response response, bool close) {
  if (closed()) return;
  phase_ = Phase::kWriting;
  response_.emplace(ToBeast(std::move(response), keep_alive_ && !close && !server_.stopping));
  ArmDeadline(options_.idle_timeout);
  http::async_write(socket_, *response_, [self = shared_from_this()](error_code ec, std::size_t) {
    if (self->closed()) return;
    bool keep_alive = self->response_->keep_alive();
    self->response_.reset();
    if (ec || !keep_alive) return self->Close();
    self->AwaitRequest(self->options_.idle_timeout);
  });
}

void Connection::OnStopAccepting() {
  if (phase_ == Phase::kAwaiting) {
    Close();
  } else if (phase_ == Phase::kStreaming) {
    stream_->Close();
  }
}

void Connection::Close() {
  if (closed()) return;
  auto self = shared_from_this();  // Forget may drop the last other reference
  phase_ = Phase::kClosed;
  DisarmDeadline();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (stream_) stream_->Detach();
  if (!handler_pending_) server_.Forget(this);
}

void Connection::HandlerReturned() {
  handler_pending_ = false;
  if (closed()) server_.Forget(this);
}

void Connection::ArmDeadline(Duration limit) {
  std::uint64_t generation = ++deadline_generation_;
  timed_out_ = false;
  deadline_.expires_after(limit);
  deadline_.async_wait([self = shared_from_this(), generation](error_code ec) {
    if (ec || generation != self->deadline_generation_ || self->closed()) return;
    self->OnDeadline();
  });
}

void Connection::DisarmDeadline() {
  ++deadline_generation_;
  deadline_.cancel();
}

void Connection::OnDeadline() {
  if (phase_ == Phase::kReading) {
    // The pending read fails with operation_aborted; FailRead answers 408.
    timed_out_ = true;
    error_code ignored;
    socket_.cancel(ignored);
    return;
  }
  Close();  // silent while waiting for a request; stuck while writing
}

}  // namespace

void ServerImpl::Accept() {
  acceptor->async_accept(asio::make_strand(*io), [this](error_code ec, tcp::socket socket) {
    if (!acceptor->is_open()) return;
    if (ec) {
      // E.g. EMFILE: the connection stays in the backlog, so retrying at once would spin.
      accept_retry->expires_after(std::chrono::milliseconds(100));
      accept_retry->async_wait([this](error_code ec) {
        if (!ec && acceptor->is_open()) Accept();
      });
      return;
    }
    Admit(std::move(socket));
    Accept();
  });
}

void ServerImpl::Admit(tcp::socket socket) {
  error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu);
    if (connections.size() < options.max_connections) {
      connection =
          std::make_shared<Connection>(*this, std::move(socket), peer.address().to_string());
      connections.emplace(connection.get(), connection);
    }
  }
  if (connection) {
    asio::post(connection->executor(), [connection] { connection->Start(); });
    return;
  }
  struct Rejection {
    tcp::socket socket;
    http::response<http::string_body> response;
  };
  auto rejection = std::make_shared<Rejection>(Rejection{
      std::move(socket),
      ToBeast(PlainText(503, fmt::format("too many connections (at most {}): try again later",
                                         options.max_connections)),
              false)});
  http::async_write(rejection->socket, rejection->response, [rejection](error_code, std::size_t) {
    error_code ignored;
    rejection->socket.shutdown(tcp::socket::shutdown_both, ignored);
    rejection->socket.close(ignored);
  });
}

void ServerImpl::Forget(Connection* connection) {
  std::lock_guard lock(mu);
  connections.erase(connection);
}

const Route* ServerImpl::FindRoute(std::string_view path) const {
  const Route* best = nullptr;
  std::size_t best_length = 0;
  for (const auto& [prefix, route] : routes) {
    bool matches = prefix.ends_with('/') ? path.starts_with(prefix) : path == prefix;
    if (matches && (best == nullptr || prefix.size() > best_length)) {
      best = &route;
      best_length = prefix.size();
    }
  }
  return best;
}

Server::Server() : impl_(std::make_unique<ServerImpl>()) {}

Server::~Server() { Stop(); }

void Server::Handle(std::string method, std::string path, Handler handler) {
  impl_->routes[std::move(path)][std::move(method)] = std::move(handler);
}

void Server::HandleStream(std::string method, std::string path, StreamHandler handler) {
  impl_->routes[std::move(path)][std::move(method)] = std::move(handler);
}

Status Server::Start(const ServerOptions& options) {
  ServerImpl& s = *impl_;
  if (s.io) return Fail("the HTTP server is already started");
  if (options.handler_threads < 1) {
    return Fail(
        fmt::format("handler_threads is {}: it must be at least 1", options.handler_threads));
  }
  if (options.max_connections < 1) return Fail("max_connections must be at least 1");
  if (options.request_timeout <= Duration::zero() || options.idle_timeout <= Duration::zero()) {
    return Fail("request_timeout and idle_timeout must be positive");
  }
  Result<tcp::endpoint> endpoint = ParseListen(options.listen);
  if (!endpoint) return Fail(endpoint.error());

  s.options = options;
  s.io = std::make_unique<asio::io_context>(1);
  s.acceptor.emplace(asio::make_strand(*s.io));
  error_code ec;
  s.acceptor->open(endpoint->protocol(), ec);
  if (!ec) s.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(*endpoint, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) s.port = s.acceptor->local_endpoint(ec).port();
  if (ec) {
    s.acceptor.reset();
    s.io.reset();
    return Fail(fmt::format("cannot listen on {}: {}", options.listen, ec.message()));
  }
  s.stopping = false;
  s.accept_retry.emplace(s.acceptor->get_executor());
  // Each counted connection has at most one handler queued or running (handler_pending_), so
  // Submit never blocks the I/O thread.
  s.pool = std::make_unique<WorkerPool>(static_cast<std::size_t>(options.handler_threads),
                                        options.max_connections);
  s.work.emplace(s.io->get_executor());  // handlers post their answers even when nothing waits
  s.Accept();
  s.io_thread = std::thread([&s] { s.io->run(); });
  return {};
}

std::uint16_t Server::port() const { return impl_->port; }

void Server::StopAccepting() {
  ServerImpl& s = *impl_;
  if (!s.io) return;
  s.stopping = true;
  std::promise<void> closed;
  asio::post(s.acceptor->get_executor(), [&s, &closed] {
    error_code ignored;
    s.acceptor->close(ignored);
    s.accept_retry->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  std::lock_guard lock(s.mu);
  for (const auto& [raw, connection] : s.connections) {
    asio::post(connection->executor(), [connection] { connection->OnStopAccepting(); });
  }
}

void Server::Stop() {
  ServerImpl& s = *impl_;
  if (!s.io) return;
  s.stopping = true;
  s.work.reset();
  s.io->stop();
  s.io_thread.join();
  // Handlers that finish now post their answers to the stopped io_context, which drops them.
  s.pool.reset();
  s.accept_retry.reset();
  s.acceptor.reset();
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;
  {
    std::lock_guard lock(s.mu);
    connections.swap(s.connections);
  }
  for (const auto& [raw, connection] : connections) connection->Close();
  connections.clear();
  // Destroys the handlers that never ran, and with them the last references to connections.
  s.io.reset();
}

}  // namespace runner::serve
