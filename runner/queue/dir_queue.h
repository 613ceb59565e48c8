// A MessageQueue in a directory, for one machine without AWS: any number of processes on that
// machine may share it (every operation holds an flock on DIR/lock).
//
//   seq              the last sequence number given out
//   ready/SEQ.json   a visible message: {"group", "body", "receives"}, SEQ in 12 digits so
//                    that the names sort in order of sending
//   held/SEQ.json    a received message, moved here from ready/ by rename
//   held/SEQ.lease   its holder: {"receipt", "until" (milliseconds since the epoch)}; a message
//                    whose lease ran out is moved back to ready/ by the next Receive
//   dedup/HASH       one empty file per deduplication id ever sent (its SHA-256)
//   dead/SEQ.json    a message received more than max_receives times
#pragma once

#include <memory>
#include <string>

#include "runner/queue/message_queue.h"

namespace runner::queue {

// Creates `dir` and its subdirectories when missing.
Result<std::unique_ptr<MessageQueue>> OpenDirectoryQueue(const std::string& dir, int max_receives);

}  // namespace runner::queue
