#include "runner/queue/message_queue.h"

#include <fmt/format.h>

#include <filesystem>

#include "runner/aws/service_client.h"
#include "runner/aws/sqs.h"
#include "runner/queue/dir_queue.h"
#include "runner/queue/sqs_queue.h"

namespace runner::queue {

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
  auto connection = std::make_shared<aws::AwsConnection>(
      aws::ConnectAws(options.env, options.http, options.credentials));
  aws::SqsOptions sqs;
  sqs.region = parsed->region.empty() ? aws::DefaultRegion(options.env) : parsed->region;
  sqs.endpoint = parsed->endpoint;
  sqs.log = std::move(options.log);
  auto client = aws::SqsClient::Create(*connection->http, *connection->credentials, std::move(sqs));
  if (!client) return Fail(client.error());
  return MakeSqsQueue(std::move(*client), parsed->url, std::move(connection));
}

}  // namespace runner::queue
