// `runner worker` (SPEC section 10): takes builds that `runner serve --queue` sent to the shared
// queue (runner/queue/message_queue.h) and builds them on this machine, one at a time, keeping
// the records under `records:` (records.h). The same configuration file as the server's.
//
// For each message: the build's attempt is claimed in the records (an earlier attempt that
// never ended, its worker killed, is marked abandoned there); a build whose branch has moved on
// (a newer build of it was queued, or the branch's head in the mirror is another commit) is
// recorded as skipped; otherwise the commit is fetched into a mirror and built in a fresh work
// tree as `runner __build` (runner/serve/build_job.h), while a heartbeat keeps the message
// invisible and the logs are shipped as they grow (log_shipper.h). The record is published
// once (report.json last, with a conditional write), then the message is deleted. A build that
// the worker could not finish (stopped by SIGTERM past its stop_grace, or its message lost
// because the heartbeat could not reach the queue for a whole visibility timeout) is cancelled,
// marked abandoned and never published; on SIGTERM its message is handed back at once.
#pragma once

#include <string>

#include "runner/serve/serve_config.h"

namespace runner::worker {

// Works until SIGTERM or SIGINT: then it takes no new build, lets the running one go on for
// stop_grace (a second signal: at once), cancels it past that, and returns 0. A worker that
// cannot start (no queue configured, a queue or records it cannot open) returns 2 after saying
// why on stderr.
int RunWorker(const serve::ServeConfig& config, const std::string& self_exe);

}  // namespace runner::worker
