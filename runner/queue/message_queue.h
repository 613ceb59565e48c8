// The shared build queue of `runner serve --queue` and `runner worker` (SPEC section 10): FIFO
// per message group, a message deduplicated by its id, invisible to others while a worker
// holds it (its visibility timeout, extended while it builds), back in the queue when the
// holder lets go or dies, and moved to a dead-letter place after too many receives. Two
// implementations behind one interface: SQS FIFO (runner/aws/sqs.h) for many machines, and a
// directory for one machine without AWS.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner::queue {

struct Message {
  std::string body;
  std::string receipt;    // names this receive in ChangeVisibility and Delete
  int receive_count = 0;  // this receive included
};

struct QueueDepth {
  std::int64_t visible = 0;    // ApproximateNumberOfMessages
  std::int64_t in_flight = 0;  // ApproximateNumberOfMessagesNotVisible
};

// Thread-safe: a worker's heartbeat extends a message while its main thread builds.
class MessageQueue {
 public:
  virtual ~MessageQueue() = default;

  // The queue for messages ("https://sqs.../builds.fifo", "file:///var/lib/runner/queue/").
  virtual std::string Describe() const = 0;

  // Adds `body` at the end of `group`. A message with the `dedup_id` of one sent before (SQS:
  // within five minutes; a directory: ever) is accepted and dropped.
  virtual Status Send(std::string_view body, std::string_view group, std::string_view dedup_id) = 0;
  // The first visible message of a group none of whose messages is held, now held for
  // `visibility`; waits up to `wait` for one, polling `cancelled` (optional). nullopt when
  // none came.
  virtual Result<std::optional<Message>> Receive(std::chrono::seconds wait,
                                                 std::chrono::seconds visibility,
                                                 const std::function<bool()>& cancelled) = 0;
  // Holds the message for `visibility` from now; 0 lets it go at once. An error when the
  // receipt no longer holds the message (its visibility ran out and someone else took it).
  virtual Status ChangeVisibility(const std::string& receipt, std::chrono::seconds visibility) = 0;
  // Removes the message the receipt holds.
  virtual Status Delete(const std::string& receipt) = 0;
  virtual Result<QueueDepth> Depth() = 0;
  // How many receives a message gets before it goes to the dead letters (SQS: the
  // maxReceiveCount of the queue's RedrivePolicy); 0 when it never does.
  virtual Result<int> MaxReceives() = 0;
};

struct MessageQueueOptions {
  Environment env;  // SQS: credentials and region
  // Directory queue: receives after which a message goes to dead/ instead (SQS: the queue's
  // RedrivePolicy decides).
  int max_receives = 5;
  // Retry and progress lines (never a secret). Optional.
  std::function<void(std::string_view)> log;
  // For tests: SQS's HTTP client and credentials (default: libcurl, the default chain).
  aws::HttpClient* http = nullptr;
  aws::CredentialsProvider* credentials = nullptr;
};

// `file:///abs/dir` (or `file://rel/dir`, relative to the working directory) a directory queue,
// created when missing; `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME.fifo` or an
// SQS-compatible `http(s)://HOST/ACCOUNT/NAME.fifo` an SQS FIFO queue. Anything else is an error
// that names `url` and the forms accepted.
Result<std::unique_ptr<MessageQueue>> OpenMessageQueue(std::string_view url,
                                                       MessageQueueOptions options);

}  // namespace runner::queue
