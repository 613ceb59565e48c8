// `runner serve` (SPEC section 9): GitHub push webhooks in, builds out, and the pages that show
// them. One process: the HTTP server (runner/serve/http_server.h) answers hooks and pages on
// its threads; the main thread runs the builds, each as `runner __build` (build_job.h) in a
// fresh work tree (git_mirror.h), taken in order from the persisted queue (build_queue.h);
// commit statuses go to GitHub from a thread of their own (github_status.h), so that no hook
// waits for GitHub.
#pragma once

#include <string>

#include "runner/serve/serve_config.h"

namespace runner::serve {

// Serves until SIGTERM or SIGINT: then it stops taking hooks, lets the running builds go on
// for the configured stop_grace, cancels what still runs (a second signal cancels at once), and
// returns 0 once every build has ended and its record and queue entry are written. A server
// that cannot start returns 2 after saying why on stderr.
int RunServe(const ServeConfig& config, const std::string& self_exe);

}  // namespace runner::serve
