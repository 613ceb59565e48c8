// Writes what tests/browser/fake_server.js serves for the browser check: the build page and
// builds list of a running build with a hostile branch, its JSON, the script, style sheet and
// Content-Security-Policy, and a step log rendered by AnsiToHtml, one event's data per line.
//
// Usage: page_fixture DIR
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "runner/atomic_file.h"
#include "runner/build_record.h"
#include "runner/serve/ansi.h"
#include "runner/serve/pages.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json Report(std::chrono::system_clock::time_point now) {
  auto at = [&](std::chrono::seconds before_now) {
    return runner::FormatTimestamp(now - before_now);
  };
  json outputs = {{"ami", "ami-0123456789abcdef0"}};
  return {{"build",
           {{"project", "orders"},
            {"branch", "<script>alert(1)</script>"},
            {"commit", "\"onmouseover=\"alert(2)"},
            {"number", "158"},
            {"id", "orders-hostile-158"},
            {"event", "push"},
            {"trigger", "webhook"}}},
          {"status", "running"},
          {"started", at(95s)},
          {"finished", nullptr},
          {"duration_s", nullptr},
          {"steps",
           json::array({{{"id", "build"},
                         {"kind", "shell"},
                         {"status", "success"},
                         {"exit_code", 0},
                         {"attempts", 1},
                         {"started", at(95s)},
                         {"finished", at(35s)},
                         {"duration_s", 60.0},
                         {"outputs", outputs},
                         {"artifacts", json::array({{{"path", "<img src=x onerror=alert(3)>.zip"},
                                                     {"size", 2048},
                                                     {"sha256", std::string(64, 'c')},
                                                     {"url", "javascript:alert(4)"}}})},
                         {"log", "logs/build.log"}},
                        {{"id", "bake"},
                         {"kind", "packer"},
                         {"status", "running"},
                         {"exit_code", nullptr},
                         {"attempts", 1},
                         {"started", at(30s)},
                         {"finished", nullptr},
                         {"duration_s", nullptr},
                         {"outputs", json::object()},
                         {"artifacts", json::array()},
                         {"log", "logs/bake.log"}},
                        {{"id", "deploy"},
                         {"kind", "deploy"},
                         {"status", "pending"},
                         {"exit_code", nullptr},
                         {"attempts", 0},
                         {"started", nullptr},
                         {"finished", nullptr},
                         {"duration_s", nullptr},
                         {"outputs", json::object()},
                         {"artifacts", json::array()},
                         {"log", nullptr}}})}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: page_fixture DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  auto now = std::chrono::system_clock::now();
  json report = Report(now);
  runner::serve::AnsiToHtml converter;
  json fragments = json::array();
  for (int line = 1; line <= 400; ++line) {
    std::string text = line % 3 == 0
                           ? fmt::format("\x1b[31m<img src=x onerror=alert({})>\x1b[0m\n", line)
                           : fmt::format("\x1b[32m==> amazon-ebs:\x1b[0m line {}\n", line);
    fragments.push_back(converter.Feed(text));
  }
  const std::pair<std::string, std::string> files[] = {
      {"build.html", runner::serve::BuildPage(report, {.now = now})},
      {"builds.html", runner::serve::BuildsPage({report}, {.now = now})},
      {"build.json", report.dump()},
      {"builds.json", json{{"builds", {report}}, {"now", runner::FormatTimestamp(now)}}.dump()},
      {"app.js", std::string(runner::serve::PageScript())},
      {"app.css", std::string(runner::serve::PageStyle())},
      {"csp.txt", std::string(runner::serve::ContentSecurityPolicy())},
      {"log.json", fragments.dump()},
  };
  for (const auto& [name, text] : files) {
    if (auto written = runner::WriteFileAtomic(dir + "/" + name, text, /*sync=*/false); !written) {
      std::fprintf(stderr, "page_fixture: %s\n", written.error().c_str());
      return 1;
    }
  }
  return 0;
}
