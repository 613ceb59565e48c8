// A MessageQueue on an SQS FIFO queue (runner/aws/sqs.h), for many machines. Dead letters go
// where the queue's RedrivePolicy says, after its maxReceiveCount.
#pragma once

#include <memory>
#include <string>

#include "runner/aws/sqs.h"
#include "runner/queue/message_queue.h"

namespace runner::queue {

// The HTTP client and credentials `client` uses must outlive the queue, or be held by `owned`,
// which the queue destroys after the client.
std::unique_ptr<MessageQueue> MakeSqsQueue(std::unique_ptr<aws::SqsClient> client,
                                           std::string queue_url,
                                           std::shared_ptr<void> owned = nullptr);

}  // namespace runner::queue
