// The pages of `runner serve` (SPEC section 9): the builds list and a build's page, with the
// style sheet and script they load.
//
// A build is a JSON object of report.json's schema (SPEC section 5): {build: {project, branch,
// commit, number, id, event, trigger, message?}, status, reason?, started, finished, duration_s,
// steps: [{id, name?, kind, status, exit_code, attempts, started, finished, duration_s,
// outputs, artifacts: [{path, size, sha256, url}], log, message?}]}. Before it has finished a
// build's status may be `queued`, `running`, `skipped` or `abandoned` (with `reason`), a step's
// `running` (started, not finished) or `pending` (neither). Any member may be missing or null;
// every string may hold anything a push can put there and is shown as text.
//
// URLs, each path segment percent-encoded (RFC 3986 unreserved characters stay as they are):
//   GET  /                                 BuildsPage
//   GET  /builds.json                      {"builds": [build, ...], "now": TIME}, newest first;
//                                          steps may be left out
//   GET  /builds/ID                        BuildPage
//   GET  /builds/ID.json                   the build
//   GET  /builds/ID/logs/STEP.log          the step's log as text/plain; charset=utf-8
//   GET  /events/ID/STEP                   the log as server-sent events (see log_follower.h)
//   POST /builds/ID/rerun, /builds/ID/cancel  with `Authorization: Bearer TOKEN`; the answer's
//                                          status and text are shown, and a JSON answer's
//                                          `id` (the new build) is linked
//   GET  /static/app.js, /static/app.css   PageScript(), PageStyle()
// TIME is UTC ISO 8601 ("2026-11-21T22:46:22.123Z"). The pages run no inline script and carry
// no inline style or event handler: serve them with the header ContentSecurityPolicy().
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace runner::serve {

// `text` made valid UTF-8 (runner/utf8.h MakeValidUtf8) with & < > " ' escaped and control
// characters other than tab, newline and carriage return replaced by U+FFFD: safe as element
// text and as a quoted attribute value.
std::string HtmlEscape(std::string_view text);

struct PageOptions {
  // The server's clock: a running build's duration and its running steps' bars reach it, and
  // the script corrects the browser's clock by it.
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// `/`: a table of `builds` (newest first, as given): project and number linking the build's
// page, branch, short commit, status badge, duration, trigger and event, start time. The
// script polls /builds.json every 5 s and redraws the rows.
std::string BuildsPage(const std::vector<nlohmann::json>& builds, const PageOptions& options = {});

// `/builds/ID`: the build's facts (branch, commit, status, trigger, times, duration, reason);
// rerun and cancel (shown by the script: they need it); the steps as a timeline, a bar per
// step placed by its start and end relative to the build's start (a running step's reaches
// `now`) and coloured by status, with status, duration, attempts, outputs, a plain-text log
// link and a live log panel; the artifacts. Everything as of `now` is in the HTML itself;
// the script polls /builds/ID.json every 2 s while the build is queued or running, and follows
// the logs of running steps and of those the user opens.
std::string BuildPage(const nlohmann::json& build, const PageOptions& options = {});

// The script and style sheet both pages load from /static/app.js and /static/app.css.
std::string_view PageScript();
std::string_view PageStyle();

// The Content-Security-Policy header value to send with both pages: scripts, styles and
// connections from the same origin only; nothing inline, no plugins, frames or base URL.
std::string_view ContentSecurityPolicy();

}  // namespace runner::serve
