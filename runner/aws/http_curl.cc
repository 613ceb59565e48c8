// The libcurl HttpClient. Each Send borrows an easy handle from a pool, so that concurrent
// requests never share a handle while sequential ones reuse its kept-alive connection.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <vector>

#include "runner/aws/curl_library.h"
#include "runner/aws/http.h"

namespace runner::aws {

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

namespace {

// What libcurl reads the body from: a view, never a copy.
struct BodyCursor {
  std::string_view body;
  std::size_t offset = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
  auto* cursor = static_cast<BodyCursor*>(user);
  size_t n = std::min(size * count, cursor->body.size() - cursor->offset);
  std::copy_n(cursor->body.data() + cursor->offset, n, buffer);
  cursor->offset += n;
  return n;
}

// libcurl rewinds when it must send the body again (a redirect, a reused connection that
// turned out dead, an auth round trip).
int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* cursor = static_cast<BodyCursor*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > cursor->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  cursor->offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::string Trim(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

size_t WriteHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<Pairs*>(user);
  std::string_view line(data, size * count);
  // A new status line (after `100 Continue` or a redirect) starts a new header block.
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  headers->emplace_back(std::move(name), Trim(line.substr(colon + 1)));
  return size * count;
}

int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* request = static_cast<const HttpRequest*>(user);
  return request->cancelled && request->cancelled() ? 1 : 0;
}

// The URL for messages: a presigned query string holds a signature.
std::string WithoutQuery(std::string_view url) { return std::string(url.substr(0, url.find('?'))); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool HasHeader(const Pairs& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& header) { return EqualsIgnoreCase(header.first, name); });
}

class CurlHttpClient : public HttpClient {
 public:
  explicit CurlHttpClient(CurlHttpOptions options)
      : options_(std::move(options)), library_(LoadCurlLibrary()) {}

  ~CurlHttpClient() override {
    for (CURL* handle : idle_) (*library_)->easy_cleanup(handle);
  }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    if (!library_) return Fail(library_.error());
    CURL* handle = Acquire();
    if (handle == nullptr) return Fail("cannot create an HTTP handle (libcurl)");
    Result<HttpResponse> result = Perform(handle, request);
    Release(handle);
    return result;
  }

 private:
  CURL* Acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    return (*library_)->easy_init();
  }

  void Release(CURL* handle) {
    // Reset drops the options but keeps the connection cache: the next request on this handle
    // reuses the connection when the server kept it open.
    (*library_)->easy_reset(handle);
    std::lock_guard lock(mutex_);
    idle_.push_back(handle);
  }

  Result<HttpResponse> Perform(CURL* handle, const HttpRequest& request) {
    const CurlLibrary& curl = **library_;
    HttpResponse response;
    BodyCursor cursor{request.body, 0};
    char error[CURL_ERROR_SIZE] = {0};

    curl.easy_setopt(handle, CURLOPT_URL, request.url.c_str());
    curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
    // Timeouts use no signals: requests run on several threads.
    curl.easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl.easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl.easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request.connect_timeout.count()));
    if (request.stall_timeout.count() > 0) {
      long seconds = static_cast<long>((request.stall_timeout.count() + 999) / 1000);
      curl.easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl.easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, std::max(seconds, 1L));
    }
    if (!options_.ca_bundle.empty()) {
      curl.easy_setopt(handle, CURLOPT_CAINFO, options_.ca_bundle.c_str());
    }
    curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, &WriteBody);
    curl.easy_setopt(handle, CURLOPT_WRITEDATA, &response.body);
    curl.easy_setopt(handle, CURLOPT_HEADERFUNCTION, &WriteHeader);
    curl.easy_setopt(handle, CURLOPT_HEADERDATA, &response.headers);
    if (request.cancelled) {
      curl.easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
      curl.easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, &Progress);
      curl.easy_setopt(handle, CURLOPT_XFERINFODATA, &request);
    }

    const std::string& method = request.method;
    if (method == "GET") {
      curl.easy_setopt(handle, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
      curl.easy_setopt(handle, CURLOPT_NOBODY, 1L);
    } else if (method == "PUT") {
      curl.easy_setopt(handle, CURLOPT_UPLOAD, 1L);
      curl.easy_setopt(handle, CURLOPT_READFUNCTION, &ReadBody);
      curl.easy_setopt(handle, CURLOPT_READDATA, &cursor);
      curl.easy_setopt(handle, CURLOPT_SEEKFUNCTION, &SeekBody);
      curl.easy_setopt(handle, CURLOPT_SEEKDATA, &cursor);
      curl.easy_setopt(handle, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    } else {
      // POST, DELETE, ...: POSTFIELDS points at the caller's bytes (COPYPOSTFIELDS would copy).
      curl.easy_setopt(handle, CURLOPT_POST, 1L);
      curl.easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      // Never null: a null POSTFIELDS makes libcurl read the body from stdin.
      curl.easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
      if (method != "POST") curl.easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method.c_str());
    }

    curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
      // `Name;` is libcurl's way to send a header with an empty value.
      std::string line = value.empty() ? name + ";" : name + ": " + value;
      headers = curl.slist_append(headers, line.c_str());
    }
    // libcurl adds headers of its own; the ones it would add unsigned and that change how the
    // server reads the body are turned off: `Expect: 100-continue` costs a round trip per
    // part, and a form Content-Type on a POST would describe the body wrongly.
    if (!HasHeader(request.headers, "expect")) headers = curl.slist_append(headers, "Expect:");
    if (!HasHeader(request.headers, "content-type")) {
      headers = curl.slist_append(headers, "Content-Type:");
    }
    curl.easy_setopt(handle, CURLOPT_HTTPHEADER, headers);

    CURLcode code = curl.easy_perform(handle);
    curl.slist_free_all(headers);
    if (code != CURLE_OK) {
      std::string detail = error[0] != '\0' ? Trim(error) : curl.easy_strerror(code);
      if (code == CURLE_ABORTED_BY_CALLBACK) detail = "cancelled";
      if (code == CURLE_OPERATION_TIMEDOUT && request.stall_timeout.count() > 0 &&
          detail.find("too slow") != std::string::npos) {
        detail =
            fmt::format("no data moved for {}s (stalled): {}",
                        std::max<long>(1, (request.stall_timeout.count() + 999) / 1000), detail);
      }
      return Fail(fmt::format("{} {}: {}", method, WithoutQuery(request.url), detail));
    }
    long status = 0;
    curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
  }

  CurlHttpOptions options_;
  Result<const CurlLibrary*> library_;
  std::mutex mutex_;
  std::vector<CURL*> idle_;
};

}  // namespace

std::unique_ptr<HttpClient> MakeCurlHttpClient() {
  return std::make_unique<CurlHttpClient>(CurlHttpOptions{});
}

std::unique_ptr<HttpClient> MakeCurlHttpClient(const CurlHttpOptions& options) {
  return std::make_unique<CurlHttpClient>(options);
}

}  // namespace runner::aws
