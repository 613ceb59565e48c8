#include "runner/serve/pages.h"

#include <gtest/gtest.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runner/build_record.h"

namespace runner::serve {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A page parsed by libxml2's HTML parser, as a browser would take it apart.
class Html {
 public:
  explicit Html(const std::string& text)
      : doc_(htmlReadMemory(text.data(), static_cast<int>(text.size()), "page.html", "UTF-8",
                            HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET)) {}
  bool ok() const { return doc_ != nullptr; }

  // Every element, in document order.
  std::vector<xmlNode*> Elements() const {
    std::vector<xmlNode*> found;
    std::function<void(xmlNode*)> walk = [&](xmlNode* node) {
      for (; node != nullptr; node = node->next) {
        if (node->type == XML_ELEMENT_NODE) found.push_back(node);
        walk(node->children);
      }
    };
    walk(xmlDocGetRootElement(doc_.get()));
    return found;
  }
  std::vector<xmlNode*> ByName(std::string_view name) const {
    std::vector<xmlNode*> found;
    for (xmlNode* node : Elements()) {
      if (Name(node) == name) found.push_back(node);
    }
    return found;
  }
  // The elements with attribute `name` equal to `value`, outside <template> elements.
  std::vector<xmlNode*> With(std::string_view name, std::string_view value) const {
    std::vector<xmlNode*> found;
    for (xmlNode* node : Elements()) {
      if (InTemplate(node)) continue;
      auto attribute = Attribute(node, name);
      if (attribute && *attribute == value) found.push_back(node);
    }
    return found;
  }
  xmlNode* One(std::string_view name, std::string_view value) const {
    auto found = With(name, value);
    EXPECT_EQ(found.size(), 1u) << name << "=" << value;
    return found.empty() ? nullptr : found[0];
  }

  static std::string Name(const xmlNode* node) { return reinterpret_cast<const char*>(node->name); }
  static std::optional<std::string> Attribute(xmlNode* node, std::string_view name) {
    std::unique_ptr<xmlChar, decltype(xmlFree)> value(
        xmlGetProp(node, reinterpret_cast<const xmlChar*>(std::string(name).c_str())), xmlFree);
    if (!value) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(value.get()));
  }
  static std::string Text(xmlNode* node) {
    std::unique_ptr<xmlChar, decltype(xmlFree)> text(xmlNodeGetContent(node), xmlFree);
    return text ? reinterpret_cast<const char*>(text.get()) : "";
  }
  static bool InTemplate(xmlNode* node) {
    for (xmlNode* up = node; up != nullptr && up->type == XML_ELEMENT_NODE; up = up->parent) {
      if (Name(up) == "template") return true;
    }
    return false;
  }
  // The elements below `node` whose attribute `name` is `value`.
  static std::vector<xmlNode*> Below(xmlNode* node, std::string_view name, std::string_view value) {
    std::vector<xmlNode*> found;
    for (xmlNode* child = node->children; child != nullptr; child = child->next) {
      if (child->type != XML_ELEMENT_NODE) continue;
      auto attribute = Attribute(child, name);
      if (attribute && *attribute == value) found.push_back(child);
      auto deeper = Below(child, name, value);
      found.insert(found.end(), deeper.begin(), deeper.end());
    }
    return found;
  }
  static xmlNode* Field(xmlNode* node, std::string_view field) {
    auto found = Below(node, "data-f", field);
    EXPECT_EQ(found.size(), 1u) << field;
    return found.empty() ? nullptr : found[0];
  }

 private:
  struct Free {
    void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
  };
  std::unique_ptr<xmlDoc, Free> doc_;
};

const std::string kHostileBranch = "<script>alert(1)</script>";
// Tries to leave an attribute and add an event handler; then a quote of the other kind.
const std::string kHostileCommit = "\"onmouseover=\"alert(1)' onfocus='alert(2)";
const std::string kHostileStep = "'\"><img src=x onerror=alert(1)>";
// Tries to end the JSON <script> element, and carries the JavaScript line terminators.
const std::string kHostileReason =
    "</script><script>alert(1)</script> \xE2\x80\xA8 \xE2\x80\xA9 <!-- & done";

const std::chrono::system_clock::time_point kStart =
    std::chrono::sys_days{std::chrono::November / 21 / 2026} + 22h + 46min + 22s;

std::string Iso(std::chrono::system_clock::duration since_start) {
  return FormatTimestamp(kStart + since_start);
}

json Step(std::string id, std::string status, std::optional<std::chrono::seconds> started,
          std::optional<std::chrono::seconds> finished) {
  json step = {{"id", id},
               {"kind", "shell"},
               {"status", status},
               {"exit_code", nullptr},
               {"attempts", started ? 1 : 0},
               {"started", nullptr},
               {"finished", nullptr},
               {"duration_s", nullptr},
               {"outputs", json::object()},
               {"artifacts", json::array()},
               {"log", started ? json("logs/" + id + ".log") : json(nullptr)}};
  if (started) step["started"] = Iso(*started);
  if (finished) {
    step["finished"] = Iso(*finished);
    step["duration_s"] = static_cast<double>((*finished - *started).count());
  }
  return step;
}

json Build(std::string status, std::optional<std::chrono::seconds> finished, json steps) {
  json build = {{"build",
                 {{"project", "orders"},
                  {"branch", "main"},
                  {"commit", "0123456789abcdef0123456789abcdef01234567"},
                  {"number", "158"},
                  {"id", "orders-main-158"},
                  {"event", "push"},
                  {"trigger", "webhook"}}},
                {"status", status},
                {"started", Iso(0s)},
                {"finished", nullptr},
                {"duration_s", nullptr},
                {"steps", std::move(steps)}};
  if (finished) {
    build["finished"] = Iso(*finished);
    build["duration_s"] = static_cast<double>(finished->count());
  }
  return build;
}

json HostileBuild() {
  json step = Step(kHostileStep, "failed", 0s, 72s);
  step["exit_code"] = 2;
  step["message"] = "</pre><b>bold</b>";
  step["outputs"] = {{"ami</script>", "<i>x</i> \xE2\x80\xA8"}};
  step["artifacts"] = json::array({{{"path", "<b>out</b>.zip"},
                                    {"size", 1536},
                                    {"sha256", std::string(64, 'a')},
                                    {"url", "javascript:alert(1)"}},
                                   {{"path", "ok.zip"},
                                    {"size", 10},
                                    {"sha256", "\"><script>x</script>"},
                                    {"url", "https://example.com/a?b=1&c=\"2\""}}});
  json build = Build("abandoned", 72s, json::array({step}));
  build["build"]["branch"] = kHostileBranch;
  build["build"]["commit"] = kHostileCommit;
  build["build"]["message"] = "fix <script> & 'quotes'";
  build["reason"] = kHostileReason;
  return build;
}

// No element or attribute from the data: only the page's own two script elements, no event
// handler, no inline style, no javascript: link; the embedded JSON reads back as given.
void ExpectOnlyOwnMarkup(const std::string& page, const Html& html, const json& embedded) {
  auto scripts = html.ByName("script");
  ASSERT_EQ(scripts.size(), 2u) << page;
  EXPECT_EQ(Html::Attribute(scripts[0], "src"), "/static/app.js");
  EXPECT_EQ(Html::Text(scripts[0]), "");
  EXPECT_EQ(Html::Attribute(scripts[1], "type"), "application/json");
  EXPECT_EQ(Html::Attribute(scripts[1], "id"), "page-data");
  EXPECT_EQ(json::parse(Html::Text(scripts[1])), embedded);
  for (xmlNode* node : html.Elements()) {
    std::string name = Html::Name(node);
    EXPECT_NE(name, "img");
    EXPECT_NE(name, "b");
    EXPECT_NE(name, "i");
    for (xmlAttr* attribute = node->properties; attribute != nullptr; attribute = attribute->next) {
      std::string attribute_name = reinterpret_cast<const char*>(attribute->name);
      EXPECT_FALSE(attribute_name.starts_with("on")) << attribute_name;
      EXPECT_NE(attribute_name, "style");
    }
    if (name == "a") {
      EXPECT_FALSE(Html::Attribute(node, "href")->starts_with("javascript:"));
    }
  }
  // The JSON element's text carries neither < nor the raw line separators.
  std::size_t begin = page.find("<script type=\"application/json\"");
  std::string json_text = page.substr(begin, page.find("</script>", begin) - begin);
  json_text = json_text.substr(json_text.find('>') + 1);
  EXPECT_EQ(json_text.find('<'), std::string::npos);
  EXPECT_EQ(json_text.find("\xE2\x80\xA8"), std::string::npos);
  EXPECT_EQ(json_text.find("\xE2\x80\xA9"), std::string::npos);
}

TEST(PagesTest, HtmlEscape) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("caf\xC3\xA9 \xFF\xFE"), "caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(HtmlEscape(std::string("a\0b\x01\tc\n", 7)),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\tc\n");
}

TEST(PagesTest, BuildPageShowsHostileValuesAsText) {
  json build = HostileBuild();
  std::string page = BuildPage(build, {.now = kStart + 5min});
  Html html(page);
  ASSERT_TRUE(html.ok());
  ExpectOnlyOwnMarkup(page, html, {{"report", build}, {"now", Iso(5min)}});

  EXPECT_EQ(Html::Text(html.One("data-f", "branch")), kHostileBranch);
  xmlNode* commit = html.One("data-f", "commit");
  EXPECT_EQ(Html::Attribute(commit, "title"), kHostileCommit);
  EXPECT_EQ(Html::Text(commit), kHostileCommit.substr(0, 10));
  EXPECT_EQ(Html::Text(html.One("data-f", "commit-message")), "fix <script> & 'quotes'");
  EXPECT_EQ(Html::Text(html.One("data-f", "reason")), kHostileReason);
  EXPECT_FALSE(Html::Attribute(html.One("data-f", "reason-row"), "hidden"));

  xmlNode* step = html.One("data-step", kHostileStep);
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(Html::Text(Html::Field(step, "id")), kHostileStep);
  EXPECT_EQ(Html::Text(Html::Field(step, "message")), "</pre><b>bold</b>");
  EXPECT_EQ(Html::Text(Html::Field(step, "outputs")), "ami</script><i>x</i> \xE2\x80\xA8");
  EXPECT_EQ(
      Html::Attribute(Html::Field(step, "log-link"), "href"),
      "/builds/orders-main-158/logs/%27%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.log");

  auto paths = html.With("data-f", "path");
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(Html::Text(paths[0]), "<b>out</b>.zip");
  auto urls = html.With("data-f", "url");
  ASSERT_EQ(urls.size(), 2u);
  // A javascript: URL is shown, never linked; an https one is a link.
  EXPECT_EQ(Html::Text(urls[0]), "javascript:alert(1)");
  EXPECT_EQ(urls[0]->children->type, XML_TEXT_NODE);
  ASSERT_EQ(Html::Name(urls[1]->children), "a");
  EXPECT_EQ(Html::Attribute(urls[1]->children, "href"), "https://example.com/a?b=1&c=\"2\"");
  auto shas = html.With("data-f", "sha256");
  EXPECT_EQ(Html::Attribute(shas[1], "title"), "\"><script>x</script>");
}

TEST(PagesTest, BuildsPageShowsHostileValuesAsText) {
  json hostile = HostileBuild();
  hostile["build"]["id"] = "orders-<x>-1";
  std::vector<json> builds = {hostile, Build("success", 75s, json::array())};
  std::string page = BuildsPage(builds, {.now = kStart + 5min});
  Html html(page);
  ASSERT_TRUE(html.ok());
  ExpectOnlyOwnMarkup(page, html, {{"builds", builds}, {"now", Iso(5min)}});
  auto branches = html.With("data-f", "branch");
  ASSERT_EQ(branches.size(), 2u);
  EXPECT_EQ(Html::Text(branches[0]), kHostileBranch);
  EXPECT_EQ(Html::Attribute(branches[0], "title"), kHostileBranch);
  auto commits = html.With("data-f", "commit");
  EXPECT_EQ(Html::Attribute(commits[0], "title"), kHostileCommit);
  auto links = html.With("data-f", "link");
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(Html::Attribute(links[0], "href"), "/builds/orders-%3Cx%3E-1");
  EXPECT_EQ(Html::Attribute(links[1], "href"), "/builds/orders-main-158");
  EXPECT_EQ(Html::Text(links[1]), "orders #158");
}

TEST(PagesTest, BuildsPageRowsShowStatusDurationTriggerAndStart) {
  json running = Build("running", std::nullopt, json::array());
  json queued = Build("queued", std::nullopt, json::array());
  queued["started"] = nullptr;
  std::vector<json> builds = {queued, running, Build("failed", 72s, json::array())};
  Html html(BuildsPage(builds, {.now = kStart + 90s}));
  auto statuses = html.With("data-f", "status");
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_EQ(Html::Text(statuses[0]), "queued");
  EXPECT_EQ(Html::Attribute(statuses[1], "class"), "badge st-running");
  EXPECT_EQ(Html::Attribute(statuses[2], "class"), "badge st-failed");
  auto durations = html.With("data-f", "duration");
  EXPECT_EQ(Html::Text(durations[0]), "");
  EXPECT_EQ(Html::Text(durations[1]), "1m30s");  // running: up to now
  EXPECT_EQ(Html::Text(durations[2]), "1m12s");
  EXPECT_EQ(Html::Text(html.With("data-f", "trigger")[2]), "webhook \xC2\xB7 push");
  auto started = html.With("data-f", "started");
  EXPECT_EQ(Html::Text(started[2]), "2026-11-21T22:46:22Z");
  EXPECT_EQ(Html::Attribute(started[2], "datetime"), "2026-11-21T22:46:22.000Z");
  EXPECT_EQ(Html::Text(html.With("data-f", "commit")[2]), "0123456789");
  EXPECT_TRUE(Html::Attribute(html.One("id", "no-builds"), "hidden"));
  EXPECT_FALSE(Html::Attribute(Html(BuildsPage({})).One("id", "no-builds"), "hidden"));
}

// The bars of the steps' <li> elements (the template's left out), by step id.
std::map<std::string, std::pair<double, double>> Bars(const Html& html) {
  std::map<std::string, std::pair<double, double>> bars;
  for (xmlNode* step : html.ByName("li")) {
    if (Html::InTemplate(step)) continue;
    xmlNode* bar = Html::Field(step, "bar");
    bars[*Html::Attribute(step, "data-step")] = {std::stod(*Html::Attribute(bar, "x")),
                                                 std::stod(*Html::Attribute(bar, "width"))};
  }
  return bars;
}

TEST(PagesTest, TimelineHasABarPerStepSizedByItsDuration) {
  json build =
      Build("success", 180s,
            json::array({Step("build", "success", 0s, 60s), Step("test", "success", 60s, 90s),
                         Step("bake", "success", 90s, 180s)}));
  Html html(BuildPage(build, {.now = kStart + 1h}));
  auto bars = Bars(html);
  ASSERT_EQ(bars.size(), 3u);
  EXPECT_NEAR(bars["build"].first, 0, 0.01);
  EXPECT_NEAR(bars["build"].second, 333.333, 0.01);
  EXPECT_NEAR(bars["test"].first, 333.333, 0.01);
  EXPECT_NEAR(bars["test"].second, 166.667, 0.01);
  EXPECT_NEAR(bars["bake"].first, 500, 0.01);
  EXPECT_NEAR(bars["bake"].second, 500, 0.01);
  EXPECT_EQ(Html::Text(html.One("data-f", "span")), "3m");
  xmlNode* bake = html.One("data-step", "bake");
  EXPECT_EQ(Html::Text(Html::Field(bake, "duration")), "1m30s");
  EXPECT_EQ(Html::Text(Html::Field(bake, "attempts")), "1 attempt");
  EXPECT_EQ(Html::Attribute(Html::Field(bake, "bar"), "class"), "st-success");
  EXPECT_EQ(Html::Attribute(Html::Field(bake, "log-link"), "href"),
            "/builds/orders-main-158/logs/bake.log");
}

TEST(PagesTest, RunningStepsReachNowAndPendingOnesHaveNoBar) {
  json retried = Step("build", "success", 0s, 30s);
  retried["attempts"] = 2;
  json build = Build("running", std::nullopt,
                     json::array({retried, Step("bake", "running", 30s, std::nullopt),
                                  Step("deploy", "pending", std::nullopt, std::nullopt)}));
  std::string page = BuildPage(build, {.now = kStart + 60s});
  Html html(page);
  auto bars = Bars(html);
  ASSERT_EQ(bars.size(), 3u);
  EXPECT_NEAR(bars["build"].second, 500, 0.01);
  EXPECT_NEAR(bars["bake"].first, 500, 0.01);
  EXPECT_NEAR(bars["bake"].second, 500, 0.01);
  EXPECT_EQ(bars["deploy"].second, 0);

  xmlNode* h1 = html.ByName("h1")[0];
  EXPECT_EQ(Html::Attribute(Html::Field(h1, "status"), "class"), "badge st-running");
  EXPECT_EQ(Html::Text(html.With("data-f", "duration")[0]), "1m");
  xmlNode* bake = html.One("data-step", "bake");
  EXPECT_EQ(Html::Attribute(bake, "class"), "step st-running");
  EXPECT_EQ(Html::Text(Html::Field(bake, "status")), "running");
  EXPECT_EQ(Html::Text(Html::Field(bake, "duration")), "30s");
  EXPECT_EQ(Html::Text(Html::Field(html.One("data-step", "build"), "attempts")), "2 attempts");
  xmlNode* deploy = html.One("data-step", "deploy");
  EXPECT_EQ(Html::Text(Html::Field(deploy, "status")), "pending");
  EXPECT_EQ(Html::Text(Html::Field(deploy, "duration")), "");
  // A step that has not started has no log yet: its panel and link are hidden.
  EXPECT_TRUE(Html::Attribute(Html::Field(deploy, "log"), "hidden"));
  EXPECT_FALSE(Html::Attribute(Html::Field(bake, "log"), "hidden"));
  // No reason: the row is hidden. The actions wait for the script.
  EXPECT_TRUE(Html::Attribute(html.One("data-f", "reason-row"), "hidden"));
  EXPECT_TRUE(Html::Attribute(html.One("id", "actions"), "hidden"));
}

// A build that never ran a step shows why: skipped, or, on the shared queue, asked to stop
// and not yet stopped by a worker.
TEST(PagesTest, SkippedAndCancellingBuildsShowTheirReason) {
  const std::pair<std::string, std::string> cases[] = {
      {"skipped", "superseded by orders-main-159"},
      {"cancelling", "cancelled from the build page"}};
  for (const auto& [status, reason] : cases) {
    SCOPED_TRACE(status);
    json build = Build(status, std::nullopt, json::array());
    build["started"] = nullptr;
    build["reason"] = reason;
    Html html(BuildPage(build));
    xmlNode* h1 = html.ByName("h1")[0];
    EXPECT_EQ(Html::Text(Html::Field(h1, "status")), status);
    EXPECT_EQ(Html::Attribute(Html::Field(h1, "status"), "class"), "badge st-" + status);
    EXPECT_EQ(Html::Text(html.One("data-f", "reason")), reason);
    EXPECT_FALSE(Html::Attribute(html.One("data-f", "reason-row"), "hidden"));
    EXPECT_FALSE(Html::Attribute(html.One("id", "no-steps"), "hidden"));
    EXPECT_EQ(Html::Text(html.One("data-f", "span")), "");
  }
}

TEST(PagesTest, UnknownStatusGetsNoClassOfItsOwn) {
  json build = Build("x\" onclick=\"y", 1s, json::array());
  Html html(BuildPage(build));
  xmlNode* h1 = html.ByName("h1")[0];
  EXPECT_EQ(Html::Attribute(Html::Field(h1, "status"), "class"), "badge st-unknown");
  EXPECT_EQ(Html::Text(Html::Field(h1, "status")), "x\" onclick=\"y");
}

TEST(PagesTest, ArtifactsShowSizeAndShortDigest) {
  json step = Step("zip", "success", 0s, 5s);
  step["artifacts"] =
      json::array({{{"path", "dist/app.zip"},
                    {"size", 3 * 1024 * 1024 / 2},
                    {"sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
                    {"url", nullptr}}});
  Html html(BuildPage(Build("success", 5s, json::array({step}))));
  EXPECT_EQ(Html::Text(html.One("data-f", "path")), "dist/app.zip");
  EXPECT_EQ(Html::Text(html.One("data-f", "size")), "1.5 MiB");
  EXPECT_EQ(Html::Attribute(html.One("data-f", "size"), "title"), "1572864 bytes");
  EXPECT_EQ(Html::Text(html.One("data-f", "sha256")), "9f86d081884c");
  EXPECT_EQ(Html::Text(html.One("data-f", "step")), "zip");
  EXPECT_EQ(Html::Text(html.One("data-f", "url")), "");
  EXPECT_TRUE(Html::Attribute(html.One("id", "no-artifacts"), "hidden"));
}

TEST(PagesTest, ScriptStyleAndPolicy) {
  std::string_view policy = ContentSecurityPolicy();
  EXPECT_NE(policy.find("script-src 'self'"), std::string_view::npos);
  EXPECT_NE(policy.find("style-src 'self'"), std::string_view::npos);
  EXPECT_EQ(policy.find("unsafe"), std::string_view::npos);
  EXPECT_NE(PageScript().find("EventSource"), std::string_view::npos);
  // The style sheet has every palette class AnsiToHtml can write.
  for (std::string_view name : {".f0 ", ".f255 ", ".b0 ", ".b255 ", ".ab ", ".fr ", ".br "}) {
    EXPECT_NE(PageStyle().find(name), std::string_view::npos) << name;
  }
}

}  // namespace
}  // namespace runner::serve
