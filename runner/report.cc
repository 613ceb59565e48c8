#include "runner/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "runner/atomic_file.h"
#include "runner/xml.h"

namespace runner {

namespace {

using json = nlohmann::ordered_json;

json OptionalTime(const std::optional<WallTime>& time) {
  return time ? json(FormatTimestamp(*time)) : json(nullptr);
}

}  // namespace

std::string ReportJson(const BuildRecord& build, const SecretMasker& masker) {
  auto text = [&](std::string_view value) { return masker.Mask(value); };
  const BuildContext& context = build.context;
  json report;
  report["build"] = {{"project", text(context.project)}, {"branch", text(context.branch)},
                     {"commit", text(context.commit)},   {"number", text(context.number)},
                     {"id", text(context.id)},           {"event", text(context.event)},
                     {"trigger", text(context.trigger)}};
  report["status"] = build.status;
  report["started"] = FormatTimestamp(build.started);
  // A running build (live.json) has not finished.
  bool running = build.status == "running";
  report["finished"] = running ? json(nullptr) : json(FormatTimestamp(build.finished));
  report["duration_s"] = running ? json(nullptr) : json(Seconds(build.started, build.finished));
  json steps = json::array();
  for (const StepRecord& step : build.steps) {
    json outputs = json::object();
    for (const auto& [name, value] : step.outputs) outputs[name] = text(value);
    json artifacts = json::array();
    for (const Artifact& artifact : step.artifacts) {
      artifacts.push_back(
          {{"path", text(artifact.path)},
           {"size", artifact.size},
           {"sha256", artifact.sha256},
           {"url", artifact.url.empty() ? json(nullptr) : json(text(artifact.url))}});
    }
    // Member by member: a braced list would copy every value once more.
    json entry = json::object();
    entry["id"] = step.id;
    entry["name"] = text(step.name);
    entry["kind"] = step.kind;
    entry["status"] = StatusName(step.status);
    entry["exit_code"] = step.exit_code ? json(*step.exit_code) : json(nullptr);
    entry["attempts"] = step.attempts;
    entry["started"] = OptionalTime(step.started);
    entry["finished"] = OptionalTime(step.finished);
    entry["duration_s"] = step.started && step.finished
                              ? json(Seconds(*step.started, *step.finished))
                              : json(nullptr);
    entry["outputs"] = std::move(outputs);
    entry["artifacts"] = std::move(artifacts);
    entry["log"] = step.log.empty() ? json(nullptr) : json(step.log);
    if (!step.message.empty()) entry["message"] = text(step.message);
    if (!step.log_error.empty()) entry["log_error"] = text(step.log_error);
    if (step.cache) {
      json cache = {{"hit", step.cache->hit}, {"key", step.cache->key}};
      if (step.cache->hit) {
        cache["from"] = text(step.cache->from);
      } else {
        cache["stored"] = step.cache->stored;
      }
      entry["cache"] = std::move(cache);
    }
    steps.push_back(std::move(entry));
  }
  report["steps"] = std::move(steps);
  // Logs and outputs may hold any bytes: invalid UTF-8 becomes U+FFFD instead of an exception.
  return report.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string JunitXml(const BuildRecord& build, const SecretMasker& masker) {
  auto text = [&](std::string_view value) { return masker.Mask(value); };
  auto seconds = [](double value) { return fmt::format("{:.3f}", value); };
  int failures = 0;
  int skipped = 0;
  for (const StepRecord& step : build.steps) {
    failures += step.status == StepStatus::kFailed || step.status == StepStatus::kTimedOut;
    skipped += step.status != StepStatus::kSuccess && step.status != StepStatus::kFailed &&
               step.status != StepStatus::kTimedOut;
  }
  const std::string tests = std::to_string(build.steps.size());
  const double total = Seconds(build.started, build.finished);
  xml::Writer writer({.declaration = true, .indent = true});
  writer.Start("testsuites")
      .Attribute("name", "runner")
      .Attribute("tests", tests)
      .Attribute("failures", std::to_string(failures))
      .Attribute("time", seconds(total));
  writer.Start("testsuite")
      .Attribute("name", text(build.context.id))
      .Attribute("tests", tests)
      .Attribute("failures", std::to_string(failures))
      .Attribute("errors", "0")
      .Attribute("skipped", std::to_string(skipped))
      .Attribute("time", seconds(total))
      .Attribute("timestamp", FormatTimestamp(build.started).substr(0, 19));
  for (const StepRecord& step : build.steps) {
    writer.Start("testcase")
        .Attribute("classname", text(build.context.project))
        .Attribute("name", text(step.id))
        .Attribute(
            "time",
            seconds(step.started && step.finished ? Seconds(*step.started, *step.finished) : 0.0));
    switch (step.status) {
      case StepStatus::kSuccess:
        break;
      case StepStatus::kSkipped:
      case StepStatus::kCancelled:
      case StepStatus::kPending:
      case StepStatus::kRunning:
        writer.Start("skipped")
            .Attribute("message",
                       fmt::format("{}: {}", StatusName(step.status), text(step.message)))
            .End();
        break;
      case StepStatus::kFailed:
      case StepStatus::kTimedOut:
        writer.Start("failure")
            .Attribute("type", std::string(StatusName(step.status)))
            .Attribute("message", text(step.message))
            .Text(text(step.log_tail))
            .End();
        break;
    }
    writer.End();
  }
  // Writing into memory fails only when memory runs out: empty, never half a document.
  auto out = writer.Finish();
  return out ? std::move(*out) : std::string();
}

Status WriteReports(const std::string& build_dir, const BuildRecord& build,
                    const SecretMasker& masker) {
  std::string junit = JunitXml(build, masker);
  if (junit.empty()) return Fail("cannot write " + build_dir + "/junit.xml: out of memory");
  if (auto written = WriteFileAtomic(build_dir + "/junit.xml", junit); !written) return written;
  return WriteFileAtomic(build_dir + "/report.json", ReportJson(build, masker));
}

}  // namespace runner
