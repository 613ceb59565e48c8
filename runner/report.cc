#include "runner/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "runner/atomic_file.h"

namespace runner {

namespace {

using json = nlohmann::ordered_json;

json OptionalTime(const std::optional<WallTime>& time) {
  return time ? json(FormatTimestamp(*time)) : json(nullptr);
}

// Replaces invalid UTF-8 with U+FFFD, so that an XML reader accepts any log.
std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) >> 6) == 0x2;
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string XmlEscape(std::string_view raw) {
  std::string text = ValidUtf8(raw);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
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
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control characters but tab, newline and carriage return (a log
        // full of terminal colour codes would otherwise make Jenkins reject the file).
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "\xEF\xBF\xBD";
        } else {
          out += c;
        }
    }
  }
  return out;
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
  report["finished"] = FormatTimestamp(build.finished);
  report["duration_s"] = Seconds(build.started, build.finished);
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
    json entry = {
        {"id", step.id},
        {"name", text(step.name)},
        {"kind", step.kind},
        {"status", std::string(StatusName(step.status))},
        {"exit_code", step.exit_code ? json(*step.exit_code) : json(nullptr)},
        {"attempts", step.attempts},
        {"started", OptionalTime(step.started)},
        {"finished", OptionalTime(step.finished)},
        {"duration_s", step.started && step.finished ? json(Seconds(*step.started, *step.finished))
                                                     : json(nullptr)},
        {"outputs", outputs},
        {"artifacts", artifacts},
        {"log", step.log.empty() ? json(nullptr) : json(step.log)},
    };
    if (!step.message.empty()) entry["message"] = text(step.message);
    steps.push_back(std::move(entry));
  }
  report["steps"] = std::move(steps);
  // Logs and outputs may hold any bytes: invalid UTF-8 becomes U+FFFD instead of an exception.
  return report.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string JunitXml(const BuildRecord& build, const SecretMasker& masker) {
  auto text = [&](std::string_view value) { return XmlEscape(masker.Mask(value)); };
  int failures = 0;
  int skipped = 0;
  std::string cases;
  for (const StepRecord& step : build.steps) {
    double seconds = step.started && step.finished ? Seconds(*step.started, *step.finished) : 0.0;
    cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"",
                         text(build.context.project), text(step.id), seconds);
    switch (step.status) {
      case StepStatus::kSuccess:
        cases += "/>\n";
        break;
      case StepStatus::kSkipped:
      case StepStatus::kCancelled:
      case StepStatus::kPending:
      case StepStatus::kRunning:
        ++skipped;
        cases += fmt::format(">\n      <skipped message=\"{}: {}\"/>\n    </testcase>\n",
                             StatusName(step.status), text(step.message));
        break;
      case StepStatus::kFailed:
      case StepStatus::kTimedOut:
        ++failures;
        cases += fmt::format(
            ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
            StatusName(step.status), text(step.message), text(step.log_tail));
        break;
    }
  }
  double total = Seconds(build.started, build.finished);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"runner\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n",
                     build.steps.size(), failures, total);
  out += fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" "
      "time=\"{:.3f}\" timestamp=\"{}\">\n",
      text(build.context.id), build.steps.size(), failures, skipped, total,
      FormatTimestamp(build.started).substr(0, 19));
  out += cases;
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

Status WriteReports(const std::string& build_dir, const BuildRecord& build,
                    const SecretMasker& masker) {
  if (auto written = WriteFileAtomic(build_dir + "/junit.xml", JunitXml(build, masker)); !written) {
    return written;
  }
  return WriteFileAtomic(build_dir + "/report.json", ReportJson(build, masker));
}

}  // namespace runner
