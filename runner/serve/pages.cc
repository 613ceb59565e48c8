#include "runner/serve/pages.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <optional>

#include "runner/build_record.h"
#include "runner/duration.h"
#include "runner/utf8.h"

namespace runner::serve {

namespace {

using json = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

// The timeline's bars live in an SVG whose width is this many user units: attributes, not
// inline styles, so the pages need no 'unsafe-inline' style source.
constexpr double kTimelineWidth = 1000;
// A bar too short to see gets this width.
constexpr double kMinBarWidth = 1;
constexpr std::size_t kShortCommit = 10;
constexpr std::size_t kShortSha256 = 12;

std::string E(std::string_view text) { return HtmlEscape(text); }

const json& Member(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// A member as text: strings as they are, numbers and booleans written out, anything else "".
std::string Text(const json& object, std::string_view key) {
  const json& value = Member(object, key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return "";
}

std::optional<double> Number(const json& object, std::string_view key) {
  const json& value = Member(object, key);
  if (value.is_number()) return value.get<double>();
  return std::nullopt;
}

// "2026-11-21T22:46:22.123Z" (fraction optional; "+01:00" offsets too).
std::optional<TimePoint> ParseTime(std::string_view text) {
  auto number = [&](std::size_t at, std::size_t length) -> std::optional<int> {
    if (at + length > text.size()) return std::nullopt;
    int value = 0;
    auto [end, error] = std::from_chars(text.data() + at, text.data() + at + length, value);
    if (error != std::errc() || end != text.data() + at + length) return std::nullopt;
    return value;
  };
  auto is = [&](std::size_t at, char c) { return at < text.size() && text[at] == c; };
  auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
  auto hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || !is(4, '-') || !is(7, '-') ||
      !(is(10, 'T') || is(10, ' ')) || !is(13, ':') || !is(16, ':')) {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::chrono::milliseconds fraction{0};
  if (is(at, '.')) {
    int scale = 100;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at) {
      fraction += std::chrono::milliseconds((text[at] - '0') * scale);
      scale /= 10;
    }
  }
  std::chrono::minutes offset{0};
  if (is(at, '+') || is(at, '-')) {
    auto offset_hours = number(at + 1, 2), offset_minutes = number(at + 4, 2);
    if (!offset_hours || !offset_minutes || !is(at + 3, ':') || at + 6 != text.size()) {
      return std::nullopt;
    }
    offset = std::chrono::minutes(*offset_hours * 60 + *offset_minutes);
    if (text[at] == '-') offset = -offset;
  } else if (!is(at, 'Z') || at + 1 != text.size()) {
    return std::nullopt;
  }
  std::tm parts{};
  parts.tm_year = *year - 1900;
  parts.tm_mon = *month - 1;
  parts.tm_mday = *day;
  parts.tm_hour = *hour;
  parts.tm_min = *minute;
  parts.tm_sec = *second;
  return std::chrono::system_clock::from_time_t(::timegm(&parts)) + fraction - offset;
}

std::optional<TimePoint> Time(const json& object, std::string_view key) {
  const json& value = Member(object, key);
  if (!value.is_string()) return std::nullopt;
  return ParseTime(value.get<std::string>());
}

std::string FormatTime(TimePoint time) { return FormatTimestamp(time).substr(0, 19) + "Z"; }

std::string FormatMilliseconds(double milliseconds) {
  return FormatDuration(Duration(static_cast<std::int64_t>(milliseconds + 0.5)));
}

// The build's or step's duration: duration_s once finished, the time since it started while
// it runs, nothing before.
std::string DurationText(const json& object, TimePoint now) {
  if (auto seconds = Number(object, "duration_s")) return FormatMilliseconds(*seconds * 1000);
  auto started = Time(object, "started");
  if (!started) return "";
  TimePoint end = Time(object, "finished").value_or(now);
  return FormatMilliseconds(std::chrono::duration<double, std::milli>(end - *started).count());
}

// The status as a CSS class: only statuses the style sheet knows, never a raw string.
std::string StatusClass(std::string_view status) {
  static constexpr std::string_view kKnown[] = {"success",   "failed",     "timed_out", "skipped",
                                                "cancelled", "cancelling", "queued",    "running",
                                                "pending",   "abandoned",  "error"};
  for (std::string_view known : kKnown) {
    if (status == known) return "st-" + std::string(known);
  }
  return "st-unknown";
}

// Every byte but RFC 3986's unreserved characters percent-encoded: one path segment.
std::string UrlSegment(std::string_view text) {
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string BuildUrl(std::string_view build_id) { return "/builds/" + UrlSegment(build_id); }

std::string StepLogUrl(std::string_view build_id, std::string_view step_id) {
  return BuildUrl(build_id) + "/logs/" + UrlSegment(step_id) + ".log";
}

bool IsHttpUrl(std::string_view url) {
  auto starts_with = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    return std::equal(prefix.begin(), prefix.end(), url.begin(), [](char a, char b) {
      return a == std::tolower(static_cast<unsigned char>(b));
    });
  };
  return starts_with("https://") || starts_with("http://");
}

std::string FormatSize(double bytes) {
  if (bytes < 1024) return fmt::format("{} B", static_cast<std::uint64_t>(bytes));
  static constexpr std::string_view kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  std::size_t unit = 0;
  bytes /= 1024;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

// JSON for a <script type="application/json"> element: nothing in it can end the element or
// start a comment (< > & are \u escapes), and U+2028 and U+2029 are escaped too. Invalid UTF-8
// becomes U+FFFD.
std::string ScriptJson(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (text.compare(i, 3, "\xE2\x80\xA8") == 0 || text.compare(i, 3, "\xE2\x80\xA9") == 0) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string TimeElement(std::string_view field, std::optional<TimePoint> time) {
  if (!time) return fmt::format("<time data-f=\"{}\"></time>", field);
  return fmt::format("<time data-f=\"{}\" datetime=\"{}\">{}</time>", field, FormatTimestamp(*time),
                     FormatTime(*time));
}

std::string NumberText(const json& build) {
  std::string number = Text(build, "number");
  return number.empty() ? "" : "#" + number;
}

std::string TriggerText(const json& build) {
  std::string trigger = Text(build, "trigger");
  std::string event = Text(build, "event");
  if (trigger.empty() || event.empty()) return trigger + event;
  return trigger + " \xC2\xB7 " + event;
}

std::string CommitElement(const json& build) {
  std::string commit = Text(build, "commit");
  return fmt::format("<code data-f=\"commit\" title=\"{}\">{}</code>", E(commit),
                     E(commit.substr(0, kShortCommit)));
}

std::string Head(std::string_view title, std::string_view page) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>{}</title>\n<link rel=\"stylesheet\" href=\"/static/app.css\">\n"
      "<script src=\"/static/app.js\" defer></script>\n</head>\n<body data-page=\"{}\">\n",
      E(title), page);
}

std::string Tail(const json& data) {
  return "<script type=\"application/json\" id=\"page-data\">" + ScriptJson(data) +
         "</script>\n</body>\n</html>\n";
}

// --- the builds list ---

std::string BuildRow(const json& report, TimePoint now) {
  const json& build = Member(report, "build");
  std::string status = Text(report, "status");
  std::string branch = Text(build, "branch");
  return fmt::format(
      "<tr class=\"build {status_class}\">"
      "<td><a data-f=\"link\" href=\"{url}\"><span data-f=\"project\">{project}</span> "
      "<span data-f=\"number\">{number}</span></a></td>"
      "<td data-f=\"branch\" title=\"{branch}\">{branch}</td>"
      "<td>{commit}</td>"
      "<td><span data-f=\"status\" class=\"badge {status_class}\">{status}</span></td>"
      "<td data-f=\"duration\">{duration}</td>"
      "<td data-f=\"trigger\">{trigger}</td>"
      "<td>{started}</td></tr>\n",
      fmt::arg("status_class", StatusClass(status)),
      fmt::arg("url", E(BuildUrl(Text(build, "id")))),
      fmt::arg("project", E(Text(build, "project"))), fmt::arg("number", E(NumberText(build))),
      fmt::arg("branch", E(branch)), fmt::arg("commit", CommitElement(build)),
      fmt::arg("status", E(status)), fmt::arg("duration", E(DurationText(report, now))),
      fmt::arg("trigger", E(TriggerText(build))),
      fmt::arg("started", TimeElement("started", Time(report, "started"))));
}

// --- a build's page ---

// Where the timeline starts and how long it spans: from the build's start (or its first
// step's) to its end (or `now` while it runs, or its last step's end).
struct Timeline {
  bool started = false;  // whether anything has started yet
  TimePoint origin;
  double span_ms = 1;

  // The bar of something that ran from `started` to `finished` (or still runs at `now`).
  std::pair<double, double> Bar(std::optional<TimePoint> started, std::optional<TimePoint> finished,
                                TimePoint now) const {
    if (!started) return {0, 0};
    auto ms = [](TimePoint from, TimePoint to) {
      return std::chrono::duration<double, std::milli>(to - from).count();
    };
    double x = std::clamp(ms(origin, *started) / span_ms * kTimelineWidth, 0.0,
                          kTimelineWidth - kMinBarWidth);
    double width = ms(*started, finished.value_or(now)) / span_ms * kTimelineWidth;
    width = std::clamp(width, kMinBarWidth, kTimelineWidth - x);
    return {x, width};
  }
};

Timeline MakeTimeline(const json& report, TimePoint now) {
  std::optional<TimePoint> first = Time(report, "started");
  std::optional<TimePoint> last = Time(report, "finished");
  bool running = !last;
  const json& steps = Member(report, "steps");
  std::optional<TimePoint> last_step;
  if (steps.is_array()) {
    for (const json& step : steps) {
      auto started = Time(step, "started");
      if (!started) continue;
      if (!first || *started < *first) first = started;
      TimePoint end = Time(step, "finished").value_or(now);
      if (!last_step || end > *last_step) last_step = end;
    }
  }
  std::string status = Text(report, "status");
  TimePoint end = last.value_or(status == "running" ? now : last_step.value_or(now));
  if (running && last_step && *last_step > end) end = *last_step;
  Timeline timeline;
  timeline.started = first.has_value();
  timeline.origin = first.value_or(now);
  timeline.span_ms =
      std::max(1.0, std::chrono::duration<double, std::milli>(end - timeline.origin).count());
  return timeline;
}

std::string AttemptsText(const json& step) {
  auto attempts = Number(step, "attempts").value_or(0);
  if (attempts < 1) return "";
  return fmt::format("{} attempt{}", static_cast<long long>(attempts), attempts == 1 ? "" : "s");
}

// Why the step failed or was skipped: its message, else a non-zero exit code.
std::string StepMessage(const json& step) {
  std::string message = Text(step, "message");
  if (!message.empty()) return message;
  auto exit_code = Number(step, "exit_code");
  if (exit_code && *exit_code != 0) {
    return fmt::format("exit code {}", static_cast<long long>(*exit_code));
  }
  return "";
}

std::string Outputs(const json& step) {
  std::string html;
  const json& outputs = Member(step, "outputs");
  if (!outputs.is_object()) return html;
  for (const auto& [name, value] : outputs.items()) {
    html += fmt::format("<div><dt>{}</dt><dd>{}</dd></div>", E(name),
                        E(value.is_string() ? value.get<std::string>() : value.dump()));
  }
  return html;
}

std::string StepRow(const json& step, std::string_view build_id, const Timeline& timeline,
                    TimePoint now) {
  std::string id = Text(step, "id");
  std::string name = Text(step, "name");
  std::string status = Text(step, "status");
  std::string status_class = StatusClass(status);
  auto [x, width] = timeline.Bar(Time(step, "started"), Time(step, "finished"), now);
  bool has_log = Time(step, "started").has_value() || !Member(step, "log").is_null();
  std::string message = StepMessage(step);
  std::string outputs = Outputs(step);
  return fmt::format(
      "<li class=\"step {status_class}\" data-step=\"{id}\">"
      "<div class=\"step-head\"><span class=\"step-id\" data-f=\"id\">{id}</span>"
      "<span class=\"step-name\" data-f=\"name\"{name_hidden}>{name}</span>"
      "<span data-f=\"status\" class=\"badge {status_class}\">{status}</span>"
      "<span class=\"step-facts\"><span data-f=\"duration\">{duration}</span>"
      "<span data-f=\"attempts\">{attempts}</span></span></div>"
      "<svg class=\"bar\" viewBox=\"0 0 {width_units} 10\" preserveAspectRatio=\"none\" "
      "aria-hidden=\"true\"><rect data-f=\"bar\" class=\"{status_class}\" x=\"{x:.3f}\" y=\"0\" "
      "width=\"{width:.3f}\" height=\"10\"></rect></svg>"
      "<div class=\"step-body\">"
      "<p class=\"step-message\" data-f=\"message\"{message_hidden}>{message}</p>"
      "<dl class=\"outputs\" data-f=\"outputs\"{outputs_hidden}>{outputs}</dl>"
      "<details class=\"log\" data-f=\"log\"{log_hidden}><summary>Log "
      "<a data-f=\"log-link\" href=\"{log_url}\">plain text</a></summary>"
      "<pre class=\"log-text\" data-f=\"log-text\"></pre></details></div></li>\n",
      fmt::arg("status_class", status_class), fmt::arg("id", E(id)), fmt::arg("name", E(name)),
      fmt::arg("name_hidden", name.empty() || name == id ? " hidden" : ""),
      fmt::arg("status", E(status)), fmt::arg("duration", E(DurationText(step, now))),
      fmt::arg("attempts", E(AttemptsText(step))), fmt::arg("width_units", kTimelineWidth),
      fmt::arg("x", x), fmt::arg("width", width), fmt::arg("message", E(message)),
      fmt::arg("message_hidden", message.empty() ? " hidden" : ""), fmt::arg("outputs", outputs),
      fmt::arg("outputs_hidden", outputs.empty() ? " hidden" : ""),
      fmt::arg("log_hidden", has_log ? "" : " hidden"),
      fmt::arg("log_url", E(StepLogUrl(build_id, id))));
}

std::string ArtifactRow(std::string_view step_id, const json& artifact) {
  std::string sha256 = Text(artifact, "sha256");
  std::string url = Text(artifact, "url");
  auto size = Number(artifact, "size");
  std::string url_html = IsHttpUrl(url) ? fmt::format("<a href=\"{0}\">{0}</a>", E(url)) : E(url);
  return fmt::format(
      "<tr><td data-f=\"step\">{}</td><td data-f=\"path\">{}</td>"
      "<td data-f=\"size\" title=\"{}\">{}</td>"
      "<td><code data-f=\"sha256\" title=\"{}\">{}</code></td><td data-f=\"url\">{}</td></tr>\n",
      E(step_id), E(Text(artifact, "path")), size ? fmt::format("{:.0f} bytes", *size) : "",
      size ? FormatSize(*size) : "", E(sha256), E(sha256.substr(0, kShortSha256)), url_html);
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string valid = MakeValidUtf8(text);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
            c == '\x7f') {
          out += "\xEF\xBF\xBD";
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string BuildsPage(const std::vector<nlohmann::json>& builds, const PageOptions& options) {
  std::string html = Head("Builds", "builds");
  html +=
      "<header class=\"top\"><h1>Builds</h1>"
      "<span class=\"live\" data-f=\"live\"></span></header>\n<main>\n"
      "<table class=\"builds\"><thead><tr><th>Build</th><th>Branch</th><th>Commit</th>"
      "<th>Status</th><th>Duration</th><th>Trigger</th><th>Started</th></tr></thead>\n"
      "<tbody id=\"builds\">\n";
  for (const json& build : builds) html += BuildRow(build, options.now);
  html += "</tbody></table>\n";
  html += fmt::format("<p class=\"empty\" id=\"no-builds\"{}>No builds yet.</p>\n",
                      builds.empty() ? "" : " hidden");
  html += "<template id=\"build-template\">" + BuildRow(json::object(), options.now) +
          "</template>\n</main>\n";
  return html + Tail({{"builds", builds}, {"now", FormatTimestamp(options.now)}});
}

std::string BuildPage(const nlohmann::json& report, const PageOptions& options) {
  const json& build = Member(report, "build");
  std::string id = Text(build, "id");
  std::string status = Text(report, "status");
  std::string status_class = StatusClass(status);
  std::string reason = Text(report, "reason");
  std::string project = Text(build, "project");
  std::string title = fmt::format("{} {} {}", project, NumberText(build), status);

  std::string html = Head(title, "build");
  html += fmt::format(
      "<header class=\"top\"><nav><a href=\"/\">Builds</a></nav>"
      "<h1><span data-f=\"project\">{}</span> <span data-f=\"number\">{}</span> "
      "<span data-f=\"status\" class=\"badge {}\">{}</span></h1>"
      "<span class=\"live\" data-f=\"live\"></span></header>\n<main>\n",
      E(project), E(NumberText(build)), status_class, E(status));
  html += fmt::format(
      "<section class=\"facts\"><dl>"
      "<div><dt>Branch</dt><dd data-f=\"branch\">{}</dd></div>"
      "<div><dt>Commit</dt><dd>{} <span data-f=\"commit-message\">{}</span></dd></div>"
      "<div><dt>Trigger</dt><dd data-f=\"trigger\">{}</dd></div>"
      "<div><dt>Started</dt><dd>{}</dd></div>"
      "<div><dt>Finished</dt><dd>{}</dd></div>"
      "<div><dt>Duration</dt><dd data-f=\"duration\">{}</dd></div>"
      "<div data-f=\"reason-row\"{}><dt>Reason</dt><dd data-f=\"reason\">{}</dd></div>"
      "</dl></section>\n",
      E(Text(build, "branch")), CommitElement(build), E(Text(build, "message")),
      E(TriggerText(build)), TimeElement("started", Time(report, "started")),
      TimeElement("finished", Time(report, "finished")), E(DurationText(report, options.now)),
      reason.empty() ? " hidden" : "", E(reason));
  // Shown by the script: without it the buttons could not send the token. The form is never
  // submitted (the script sends the requests; CSP's form-action 'none' backs that up): it is
  // there for password managers.
  html +=
      "<form class=\"actions\" id=\"actions\" hidden>"
      "<label>Admin token <input type=\"password\" id=\"token\" autocomplete=\"current-password\">"
      "</label> <button type=\"button\" data-action=\"rerun\">Rerun</button> "
      "<button type=\"button\" data-action=\"cancel\">Cancel</button> "
      "<output id=\"action-result\" aria-live=\"polite\"></output></form>\n";

  Timeline timeline = MakeTimeline(report, options.now);
  const json& steps = Member(report, "steps");
  html += fmt::format(
      "<section class=\"timeline\"><h2>Steps</h2>"
      "<div class=\"axis\"><span>0s</span><span data-f=\"span\">{}</span></div>\n"
      "<ol class=\"steps\" id=\"steps\">\n",
      timeline.started ? E(FormatMilliseconds(timeline.span_ms)) : "");
  std::string artifacts;
  if (steps.is_array()) {
    for (const json& step : steps) {
      html += StepRow(step, id, timeline, options.now);
      const json& step_artifacts = Member(step, "artifacts");
      if (!step_artifacts.is_array()) continue;
      for (const json& artifact : step_artifacts)
        artifacts += ArtifactRow(Text(step, "id"), artifact);
    }
  }
  html += fmt::format("</ol>\n<p class=\"empty\" id=\"no-steps\"{}>No steps yet.</p></section>\n",
                      steps.is_array() && !steps.empty() ? " hidden" : "");
  html += fmt::format(
      "<section class=\"artifacts\"><h2>Artifacts</h2>"
      "<table><thead><tr><th>Step</th><th>Path</th><th>Size</th><th>SHA-256</th><th>URL</th>"
      "</tr></thead>\n<tbody id=\"artifacts\">\n{}</tbody></table>\n"
      "<p class=\"empty\" id=\"no-artifacts\"{}>None.</p></section>\n",
      artifacts, artifacts.empty() ? "" : " hidden");
  html += "<template id=\"step-template\">" + StepRow(json::object(), id, timeline, options.now) +
          "</template>\n";
  html += "<template id=\"artifact-template\">" + ArtifactRow("", json::object()) +
          "</template>\n</main>\n";
  return html + Tail({{"report", report}, {"now", FormatTimestamp(options.now)}});
}

std::string_view ContentSecurityPolicy() {
  return "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
         "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

namespace {

// The script of both pages. It never builds HTML from strings: data goes in with textContent
// and attributes; log fragments (HTML the server rendered with AnsiToHtml) are parsed in an
// inert <template> and only <span class> elements are kept.
constexpr std::string_view kScript = R"js('use strict';
(() => {
  const data = JSON.parse(document.getElementById('page-data').textContent);
  const skew = Date.parse(data.now) - Date.now();
  const now = () => Date.now() + skew;
  const STATUSES = new Set(['success', 'failed', 'timed_out', 'skipped', 'cancelled',
                            'cancelling', 'queued', 'running', 'pending', 'abandoned', 'error']);
  const UNFINISHED = new Set(['queued', 'running', 'pending', 'cancelling']);
  const WIDTH = 1000;
  const MIN_BAR = 1;
  const MAX_STREAMS = 4;  // browsers allow 6 connections per host over HTTP/1.1
  const MAX_LOG_CHARS = 4000000;

  const object = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v)) ? v : {};
  const list = (v) => Array.isArray(v) ? v : [];
  const text = (v) => typeof v === 'string' ? v
      : (typeof v === 'number' || typeof v === 'boolean') ? String(v) : '';
  const field = (root, name) => root.querySelector(`[data-f="${name}"]`);
  const segment = (s) => encodeURIComponent(s).replace(
      /[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const buildUrl = (id) => '/builds/' + segment(id);
  const time = (v) => {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    return Number.isNaN(t) ? null : t;
  };
  const clamp = (v, low, high) => Math.min(high, Math.max(low, v));

  // The same form as runner's FormatDuration: 1h2m3s, 45s, 1.5s, 500ms.
  function formatDuration(ms) {
    ms = Math.round(ms);
    if (ms < 0) return '-' + formatDuration(-ms);
    if (ms < 1000) return ms === 0 ? '0s' : ms + 'ms';
    if (ms < 60000) {
      const tenths = Math.floor(ms / 100);
      return tenths % 10 === 0 ? tenths / 10 + 's'
                               : Math.floor(tenths / 10) + '.' + (tenths % 10) + 's';
    }
    const s = Math.floor(ms / 1000);
    let out = '';
    if (s >= 3600) out += Math.floor(s / 3600) + 'h';
    if (s % 3600 >= 60) out += Math.floor((s % 3600) / 60) + 'm';
    if (s % 60 !== 0) out += (s % 60) + 's';
    return out;
  }
  function formatSize(bytes) {
    if (bytes < 1024) return Math.floor(bytes) + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let unit = 0;
    bytes /= 1024;
    while (bytes >= 1024 && unit + 1 < units.length) { bytes /= 1024; ++unit; }
    return bytes.toFixed(1) + ' ' + units[unit];
  }
  function durationText(o) {
    if (typeof o.duration_s === 'number') return formatDuration(o.duration_s * 1000);
    const started = time(o.started);
    if (started === null) return '';
    return formatDuration((time(o.finished) ?? now()) - started);
  }
  const numberText = (build) => text(build.number) ? '#' + text(build.number) : '';
  function triggerText(build) {
    const trigger = text(build.trigger), event = text(build.event);
    return trigger && event ? trigger + ' \u00b7 ' + event : trigger + event;
  }
  function fillStatus(element, status) {
    element.textContent = status;
    element.className = 'badge st-' + (STATUSES.has(status) ? status : 'unknown');
  }
  function fillTime(element, value) {
    const t = time(value);
    element.textContent = t === null ? '' : new Date(t).toISOString().slice(0, 19) + 'Z';
    if (t === null) element.removeAttribute('datetime');
    else element.setAttribute('datetime', new Date(t).toISOString());
  }
  function fillCommit(element, build) {
    element.textContent = text(build.commit).slice(0, 10);
    element.title = text(build.commit);
  }
  const fromTemplate = (id) => document.getElementById(id).content.firstElementChild.cloneNode(true);

  // Polls `url` every `interval` ms while `apply(json)` returns true; failures are shown and
  // retried.
  function poll(url, interval, apply) {
    const live = field(document, 'live');
    const next = async () => {
      try {
        const response = await fetch(url, {cache: 'no-store', headers: {Accept: 'application/json'}});
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        const more = apply(await response.json());
        live.textContent = '';
        live.classList.remove('offline');
        if (!more) return;
      } catch (error) {
        live.textContent = `update failed (${error.message}), retrying`;
        live.classList.add('offline');
      }
      setTimeout(next, interval);
    };
    setTimeout(next, interval);
  }

  // --- the builds list ---

  function fillBuildRow(row, report) {
    const build = object(report.build);
    const status = text(report.status);
    row.className = 'build st-' + (STATUSES.has(status) ? status : 'unknown');
    field(row, 'link').href = buildUrl(text(build.id));
    field(row, 'project').textContent = text(build.project);
    field(row, 'number').textContent = numberText(build);
    const branch = field(row, 'branch');
    branch.textContent = branch.title = text(build.branch);
    fillCommit(field(row, 'commit'), build);
    fillStatus(field(row, 'status'), status);
    field(row, 'duration').textContent = durationText(report);
    field(row, 'trigger').textContent = triggerText(build);
    fillTime(field(row, 'started'), report.started);
  }

  function buildsPage() {
    let builds = list(data.builds);
    const body = document.getElementById('builds');
    const render = () => {
      body.replaceChildren(...builds.map((report) => {
        const row = fromTemplate('build-template');
        fillBuildRow(row, object(report));
        return row;
      }));
      document.getElementById('no-builds').hidden = builds.length > 0;
    };
    poll('/builds.json', 5000, (answer) => {
      builds = list(object(answer).builds);
      render();
      return true;
    });
    setInterval(() => {
      if (builds.some((b) => UNFINISHED.has(text(object(b).status)))) render();
    }, 1000);
  }

  // --- a build's page ---

  function makeTimeline(report) {
    const t = now();
    let first = time(report.started);
    const last = time(report.finished);
    let lastStep = null;
    for (const step of list(report.steps).map(object)) {
      const started = time(step.started);
      if (started === null) continue;
      if (first === null || started < first) first = started;
      const end = time(step.finished) ?? t;
      if (lastStep === null || end > lastStep) lastStep = end;
    }
    let end = last ?? (text(report.status) === 'running' ? t : (lastStep ?? t));
    if (last === null && lastStep !== null && lastStep > end) end = lastStep;
    const origin = first ?? t;
    const span = Math.max(1, end - origin);
    return {
      started: first !== null,
      span,
      bar(step) {
        const started = time(step.started);
        if (started === null) return [0, 0];
        const x = clamp((started - origin) / span * WIDTH, 0, WIDTH - MIN_BAR);
        const width = ((time(step.finished) ?? t) - started) / span * WIDTH;
        return [x, clamp(width, MIN_BAR, WIDTH - x)];
      },
    };
  }

  function attemptsText(step) {
    const attempts = typeof step.attempts === 'number' ? step.attempts : 0;
    return attempts < 1 ? '' : `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  }
  function stepMessage(step) {
    if (text(step.message)) return text(step.message);
    return typeof step.exit_code === 'number' && step.exit_code !== 0
        ? 'exit code ' + step.exit_code : '';
  }

  function buildPage() {
    let report = object(data.report);
    const build = object(report.build);
    const id = text(build.id);
    const steps = document.getElementById('steps');
    const rows = new Map();  // step id -> <li>
    const streams = new Map();  // step id -> {source, done, chars}
    const autoOpened = new Set();
    for (const li of steps.children) rows.set(li.dataset.step, li);

    const logUrl = (step) => `${buildUrl(id)}/logs/${segment(step)}.log`;
    const eventsUrl = (step) => `/events/${segment(id)}/${segment(step)}`;

    function fillStep(li, step, timeline) {
      const stepId = text(step.id);
      const status = text(step.status);
      const statusClass = 'st-' + (STATUSES.has(status) ? status : 'unknown');
      li.className = 'step ' + statusClass;
      li.dataset.step = stepId;
      field(li, 'id').textContent = stepId;
      const name = field(li, 'name');
      name.textContent = text(step.name);
      name.hidden = !text(step.name) || text(step.name) === stepId;
      fillStatus(field(li, 'status'), status);
      field(li, 'duration').textContent = durationText(step);
      field(li, 'attempts').textContent = attemptsText(step);
      const [x, width] = timeline.bar(step);
      const bar = field(li, 'bar');
      bar.setAttribute('class', statusClass);
      bar.setAttribute('x', x.toFixed(3));
      bar.setAttribute('width', width.toFixed(3));
      const message = field(li, 'message');
      message.textContent = stepMessage(step);
      message.hidden = !message.textContent;
      const outputs = field(li, 'outputs');
      outputs.replaceChildren(...Object.entries(object(step.outputs)).map(([key, value]) => {
        const entry = document.createElement('div');
        const dt = document.createElement('dt');
        const dd = document.createElement('dd');
        dt.textContent = key;
        dd.textContent = typeof value === 'string' ? value : JSON.stringify(value);
        entry.append(dt, dd);
        return entry;
      }));
      outputs.hidden = outputs.children.length === 0;
      field(li, 'log').hidden = time(step.started) === null && step.log == null;
      field(li, 'log-link').href = logUrl(stepId);
    }

    function fillArtifacts() {
      const body = document.getElementById('artifacts');
      const artifactRows = [];
      for (const step of list(report.steps).map(object)) {
        for (const artifact of list(step.artifacts).map(object)) {
          const row = fromTemplate('artifact-template');
          field(row, 'step').textContent = text(step.id);
          field(row, 'path').textContent = text(artifact.path);
          const size = field(row, 'size');
          const bytes = typeof artifact.size === 'number' ? artifact.size : null;
          size.textContent = bytes === null ? '' : formatSize(bytes);
          size.title = bytes === null ? '' : bytes + ' bytes';
          const sha = field(row, 'sha256');
          sha.textContent = text(artifact.sha256).slice(0, 12);
          sha.title = text(artifact.sha256);
          const url = text(artifact.url);
          const cell = field(row, 'url');
          if (/^https?:\/\//i.test(url)) {
            const link = document.createElement('a');
            link.href = url;
            link.textContent = url;
            cell.replaceChildren(link);
          } else {
            cell.textContent = url;
          }
          artifactRows.push(row);
        }
      }
      body.replaceChildren(...artifactRows);
      document.getElementById('no-artifacts').hidden = artifactRows.length > 0;
    }

    function render() {
      const status = text(report.status);
      const current = object(report.build);
      document.title = `${text(current.project)} ${numberText(current)} ${status}`;
      field(document, 'project').textContent = text(current.project);
      field(document, 'number').textContent = numberText(current);
      fillStatus(document.querySelector('h1 [data-f="status"]'), status);
      const facts = document.querySelector('.facts');
      field(facts, 'branch').textContent = text(current.branch);
      fillCommit(field(facts, 'commit'), current);
      field(facts, 'commit-message').textContent = text(current.message);
      field(facts, 'trigger').textContent = triggerText(current);
      fillTime(field(facts, 'started'), report.started);
      fillTime(field(facts, 'finished'), report.finished);
      field(facts, 'duration').textContent = durationText(report);
      field(facts, 'reason').textContent = text(report.reason);
      field(facts, 'reason-row').hidden = !text(report.reason);
      document.querySelector('[data-action="cancel"]').disabled =
          !UNFINISHED.has(status) || status === 'cancelling';

      const timeline = makeTimeline(report);
      field(document.querySelector('.axis'), 'span').textContent =
          timeline.started ? formatDuration(timeline.span) : '';
      const seen = new Set();
      list(report.steps).map(object).forEach((step, index) => {
        const stepId = text(step.id);
        seen.add(stepId);
        let li = rows.get(stepId);
        if (!li) {
          li = fromTemplate('step-template');
          rows.set(stepId, li);
        }
        fillStep(li, step, timeline);
        if (steps.children[index] !== li) steps.insertBefore(li, steps.children[index] ?? null);
        if (text(step.status) === 'running' && !autoOpened.has(stepId)) {
          autoOpened.add(stepId);
          if (liveStreams() < MAX_STREAMS) field(li, 'log').open = true;
        }
      });
      for (const [stepId, li] of rows) {
        if (seen.has(stepId)) continue;
        stopStream(stepId);
        li.remove();
        rows.delete(stepId);
      }
      document.getElementById('no-steps').hidden = rows.size > 0;
      fillArtifacts();
    }

    const liveStreams = () => [...streams.values()].filter((s) => !s.done).length;

    function appendFragment(stream, pre, html) {
      const template = document.createElement('template');
      template.innerHTML = html;
      for (const element of template.content.querySelectorAll('*')) {
        const onlyClass = element.attributes.length === 0 ||
            (element.attributes.length === 1 && element.hasAttribute('class'));
        if (element.tagName !== 'SPAN' || !onlyClass || !/^[a-z0-9 ]*$/.test(element.className)) {
          element.replaceWith(document.createTextNode(element.textContent));
        }
      }
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
      stream.chars += html.length;
      pre.append(template.content);
      // Keep the page responsive on huge logs: the plain-text link has all of it.
      while (stream.chars > MAX_LOG_CHARS && pre.firstChild) {
        stream.chars -= pre.firstChild.textContent.length;
        pre.firstChild.remove();
        pre.classList.add('trimmed');
      }
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }

    function startStream(stepId) {
      const li = rows.get(stepId);
      if (!li || streams.has(stepId)) return;
      if (liveStreams() >= MAX_STREAMS) {
        const [oldest] = [...streams.entries()].find(([, s]) => !s.done);
        field(rows.get(oldest), 'log').open = false;
        stopStream(oldest);
      }
      const pre = field(li, 'log-text');
      pre.replaceChildren();
      pre.classList.remove('trimmed', 'complete', 'unavailable');
      // The server names each event's id after the log's byte offset: when the connection
      // drops, the browser reconnects with Last-Event-ID and the log goes on where it stopped.
      const source = new EventSource(eventsUrl(stepId));
      const stream = {source, done: false, chars: 0};
      streams.set(stepId, stream);
      source.onmessage = (event) => appendFragment(stream, pre, event.data);
      source.addEventListener('end', () => {
        source.close();
        stream.done = true;
        pre.classList.add('complete');
      });
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED && !stream.done) {
          stream.done = true;
          pre.classList.add('unavailable');
        }
      };
    }

    function stopStream(stepId) {
      const stream = streams.get(stepId);
      if (!stream || stream.done) return;
      stream.source.close();
      streams.delete(stepId);
    }

    steps.addEventListener('toggle', (event) => {
      const details = event.target;
      if (!(details instanceof HTMLDetailsElement)) return;
      const stepId = details.closest('li.step').dataset.step;
      if (details.open) startStream(stepId);
      else stopStream(stepId);
    }, true);

    const actions = document.getElementById('actions');
    const result = document.getElementById('action-result');
    actions.hidden = false;
    actions.addEventListener('submit', (event) => event.preventDefault());
    for (const button of actions.querySelectorAll('[data-action]')) {
      button.addEventListener('click', async () => {
        const action = button.dataset.action;
        const token = document.getElementById('token').value;
        result.textContent = action + '\u2026';
        try {
          const response = await fetch(`${buildUrl(id)}/${action}`, {
            method: 'POST', cache: 'no-store', headers: {Authorization: 'Bearer ' + token}});
          const body = await response.text();
          result.textContent = `${action}: ${response.status} ${response.statusText}`;
          let answer = null;
          if ((response.headers.get('Content-Type') ?? '').includes('json')) {
            try { answer = JSON.parse(body); } catch (error) { answer = null; }
          }
          if (answer && typeof answer.id === 'string') {
            const link = document.createElement('a');
            link.href = buildUrl(answer.id);
            link.textContent = answer.id;
            result.append(' ', link);
          } else if (body) {
            result.append(' ' + body.slice(0, 500));
          }
          if (response.ok && !polling) startPolling();
        } catch (error) {
          result.textContent = `${action} failed: ${error.message}`;
        }
      });
    }

    let polling = false;
    function startPolling() {
      polling = true;
      poll(buildUrl(id) + '.json', 2000, (answer) => {
        report = object(answer);
        render();
        polling = UNFINISHED.has(text(report.status));
        return polling;
      });
    }
    render();
    if (UNFINISHED.has(text(report.status))) startPolling();
    setInterval(() => { if (UNFINISHED.has(text(report.status))) render(); }, 1000);
  }

  if (document.body.dataset.page === 'builds') buildsPage();
  else buildPage();
})();
)js";

constexpr std::string_view kStyle = R"css(:root {
  --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa;
  --log-fg: #e5e5e5; --log-bg: #1e1e1e;
  --success: #1a7f37; --failed: #cf222e; --running: #0969da; --queued: #8250df;
  --skipped: #8c959f; --cancelled: #bc4c00;
  font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg);
}
body { margin: 0; }
header.top { display: flex; align-items: baseline; gap: 1rem; padding: .75rem 1.5rem;
  border-bottom: 1px solid var(--line); background: var(--panel); }
header.top h1 { font-size: 1.25rem; margin: 0; }
header.top nav a { color: var(--muted); }
.live { margin-left: auto; color: var(--muted); font-size: .85rem; }
.live.offline { color: var(--failed); }
main { padding: 1rem 1.5rem; }
h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
a { color: var(--running); }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .85em; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; }
.empty { color: var(--muted); }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .8rem;
  line-height: 1.4rem; color: #fff; background: var(--skipped); white-space: nowrap; }
.badge.st-success { background: var(--success); }
.badge.st-failed, .badge.st-timed_out, .badge.st-error { background: var(--failed); }
.badge.st-running { background: var(--running); }
.badge.st-queued, .badge.st-pending { background: var(--queued); }
.badge.st-cancelled, .badge.st-cancelling, .badge.st-abandoned { background: var(--cancelled); }
.facts dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr));
  gap: .5rem 1.5rem; margin: 0; }
.facts dt { color: var(--muted); font-size: .8rem; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.actions { margin-top: 1rem; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
.actions output { color: var(--muted); font-size: .9rem; }
.axis { display: flex; justify-content: space-between; margin-left: 18rem; color: var(--muted);
  font-size: .8rem; }
ol.steps { list-style: none; margin: 0; padding: 0; }
li.step { display: grid; grid-template-columns: 18rem 1fr; gap: .25rem 0;
  border-bottom: 1px solid var(--line); padding: .35rem 0; }
.step-head { display: flex; flex-wrap: wrap; gap: .4rem; align-items: baseline;
  padding-right: .75rem; }
.step-id { font-weight: 600; overflow-wrap: anywhere; }
.step-name, .step-facts { color: var(--muted); font-size: .85rem; }
.step-facts span:not(:empty) + span:not(:empty)::before { content: " \00b7  "; }
svg.bar { width: 100%; height: 1.25rem; background: var(--panel); border-radius: 3px; }
svg.bar rect { fill: var(--skipped); }
svg.bar rect.st-success { fill: var(--success); }
svg.bar rect.st-failed, svg.bar rect.st-timed_out, svg.bar rect.st-error { fill: var(--failed); }
svg.bar rect.st-running { fill: var(--running); animation: pulse 1.5s ease-in-out infinite; }
svg.bar rect.st-cancelled { fill: var(--cancelled); }
@keyframes pulse { 50% { opacity: .55; } }
.step-body { grid-column: 1 / -1; }
.step-message { margin: .2rem 0; color: var(--failed); font-size: .9rem; }
dl.outputs { display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: .2rem 0;
  font-size: .85rem; }
dl.outputs div { display: flex; gap: .3rem; }
dl.outputs dt { color: var(--muted); }
dl.outputs dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
details.log summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
pre.log-text { margin: .3rem 0; padding: .5rem .75rem; max-height: 28rem; overflow: auto;
  background: var(--log-bg); color: var(--log-fg); font-size: .8rem; line-height: 1.35;
  white-space: pre-wrap; overflow-wrap: anywhere; border-radius: 4px; }
pre.log-text:empty::before { content: "waiting for output\2026"; color: #8c959f; }
pre.log-text.complete:empty::before, pre.log-text.unavailable:empty::before { content: none; }
pre.log-text.trimmed::before { content: "earlier output trimmed: see the plain-text log\A";
  color: #8c959f; }
pre.log-text.complete::after { content: "\A[end of log]"; color: #8c959f; }
pre.log-text.unavailable::after { content: "\A[log not available: see the plain-text log]";
  color: #8c959f; }
.ab { font-weight: bold; } .ad { opacity: .7; } .ai { font-style: italic; }
.au { text-decoration: underline; }
.fr { color: var(--log-bg); } .br { background-color: var(--log-fg); }
)css";

// xterm's 256-colour palette: the 16 system colours, the 6x6x6 cube, the grey ramp.
std::string PaletteStyle() {
  static constexpr std::string_view kSystem[] = {
      "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
      "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"};
  static constexpr int kLevels[] = {0, 95, 135, 175, 215, 255};
  std::string css;
  auto add = [&](int index, std::string_view colour) {
    css +=
        fmt::format(".f{0} {{ color: {1}; }} .b{0} {{ background-color: {1}; }}\n", index, colour);
  };
  for (int i = 0; i < 16; ++i) add(i, kSystem[i]);
  for (int i = 0; i < 216; ++i) {
    add(16 + i,
        fmt::format("#{:02x}{:02x}{:02x}", kLevels[i / 36], kLevels[i / 6 % 6], kLevels[i % 6]));
  }
  for (int i = 0; i < 24; ++i) {
    int level = 8 + 10 * i;
    add(232 + i, fmt::format("#{0:02x}{0:02x}{0:02x}", level));
  }
  return css;
}

}  // namespace

std::string_view PageScript() { return kScript; }

std::string_view PageStyle() {
  static const std::string style = std::string(kStyle) + PaletteStyle();
  return style;
}

}  // namespace runner::serve
