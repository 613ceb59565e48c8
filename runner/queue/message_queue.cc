#include "runner/queue/message_queue.h"

#include <fmt/format.h>

#include <filesystem>

#include "runner/aws/sqs.h"
#include "runner/queue/dir_queue.h"
#include "runner/queue/sqs_queue.h"

namespace runner::queue {

namespace {

// What an SQS queue opened without a client of the caller's owns.
struct OwnedAws {
  std::unique_ptr<aws::HttpClient> http;
  std::unique_ptr<aws::CredentialsProvider> credentials;
};

}  // namespace

Result<std::unique_ptr<MessageQueue>> OpenMessageQueue(std::string_view url,
                                                       MessageQueueOptions options) {
  constexpr std::string_view kFile = "file://";
  if (url.starts_with(kFile)) {
    std::string dir(url.substr(kFile.size()));
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (dir.empty()) return Fail(fmt::format("queue '{}': no directory", url));
    std::error_code ec;
    dir = std::filesystem::absolute(dir, ec).lexically_normal().string();
    return OpenDirectoryQueue(dir, options.max_receives);
  }
  if (!url.starts_with("https://") && !url.starts_with("http://")) {
    return Fail(
        fmt::format("queue '{}': expected an SQS FIFO queue URL "
                    "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME.fifo) or a directory "
                    "(file:///DIR)",
                    url));
  }
  auto parsed = aws::ParseSqsQueueUrl(url);
  if (!parsed) return Fail(parsed.error());
  if (!parsed->name.ends_with(".fifo")) {
    return Fail(
        fmt::format("queue '{}': not a FIFO queue (its name must end in .fifo): builds of "
                    "a branch must run one at a time, in order",
                    url));
  }
  auto owned = std::make_shared<OwnedAws>();
  aws::HttpClient* http = options.http;
  if (http == nullptr) {
    aws::CurlHttpOptions http_options;
    if (auto bundle = Lookup(options.env, "AWS_CA_BUNDLE")) http_options.ca_bundle = *bundle;
    owned->http = aws::MakeCurlHttpClient(http_options);
    http = owned->http.get();
  }
  aws::CredentialsProvider* credentials = options.credentials;
  if (credentials == nullptr) {
    owned->credentials = aws::MakeDefaultCredentialsChain(options.env, *http);
    credentials = owned->credentials.get();
  }
  aws::SqsOptions sqs;
  sqs.region = parsed->region.empty() ? aws::DefaultRegion(options.env) : parsed->region;
  sqs.endpoint = parsed->endpoint;
  sqs.log = std::move(options.log);
  auto client = aws::SqsClient::Create(*http, *credentials, std::move(sqs));
  if (!client) return Fail(client.error());
  return MakeSqsQueue(std::move(*client), parsed->url, std::move(owned));
}

}  // namespace runner::queue
