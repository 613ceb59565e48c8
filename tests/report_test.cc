#include "runner/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runner/utf8.h"
#include "runner/xml.h"

namespace runner {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

BuildRecord SampleBuild() {
  BuildRecord build;
  build.context.project = "orders";
  build.context.branch = "main";
  build.context.commit = "0123456789abcdef";
  build.context.number = "7";
  build.context.id = "orders-main-7";
  build.context.event = "push";
  build.context.trigger = "local";
  build.started = WallTime(std::chrono::seconds(1700000000));
  build.finished = build.started + std::chrono::milliseconds(2500);
  build.status = "failed";
  StepRecord ok;
  ok.id = "compile";
  ok.kind = "run";
  ok.status = StepStatus::kSuccess;
  ok.exit_code = 0;
  ok.attempts = 1;
  ok.started = build.started;
  ok.finished = build.started + std::chrono::seconds(1);
  ok.outputs = {{"token", "abc-SECRET-def"}};
  ok.log = "logs/compile.log";
  StepRecord bad = ok;
  bad.id = "test";
  bad.status = StepStatus::kFailed;
  bad.exit_code = 2;
  bad.message = "exit code 2";
  bad.outputs.clear();
  bad.log = "logs/test.log";
  bad.log_tail = "FAIL <x> & \x1b[31mred\x1b[0m \xff\n";
  StepRecord skipped;
  skipped.id = "publish";
  skipped.kind = "run";
  skipped.status = StepStatus::kSkipped;
  skipped.message = "need 'test' failed";
  build.steps = {ok, bad, skipped};
  return build;
}

TEST(ReportTest, JsonHasTheContractFields) {
  SecretMasker masker({"SECRET"});
  auto report = nlohmann::json::parse(ReportJson(SampleBuild(), masker));
  EXPECT_EQ(report["build"]["id"], "orders-main-7");
  EXPECT_EQ(report["build"]["trigger"], "local");
  EXPECT_EQ(report["status"], "failed");
  EXPECT_EQ(report["started"], "2023-11-14T22:13:20.000Z");
  EXPECT_DOUBLE_EQ(report["duration_s"].get<double>(), 2.5);
  ASSERT_EQ(report["steps"].size(), 3u);
  const auto& compile = report["steps"][0];
  EXPECT_EQ(compile["kind"], "run");
  EXPECT_EQ(compile["status"], "success");
  EXPECT_EQ(compile["exit_code"], 0);
  EXPECT_EQ(compile["attempts"], 1);
  EXPECT_EQ(compile["outputs"]["token"], "abc-***-def");
  EXPECT_TRUE(compile["artifacts"].is_array());
  EXPECT_EQ(compile["log"], "logs/compile.log");
  EXPECT_EQ(report["steps"][2]["status"], "skipped");
  EXPECT_TRUE(report["steps"][2]["started"].is_null());
  EXPECT_TRUE(report["steps"][2]["log"].is_null());
}

TEST(ReportTest, ARunningBuildHasNotFinished) {
  BuildRecord build = SampleBuild();
  build.status = "running";
  auto report = nlohmann::json::parse(ReportJson(build, SecretMasker({})));
  EXPECT_EQ(report["status"], "running");
  EXPECT_EQ(report["started"], "2023-11-14T22:13:20.000Z");
  EXPECT_TRUE(report["finished"].is_null());
  EXPECT_TRUE(report["duration_s"].is_null());
}

TEST(ReportTest, JunitHasOneCasePerStepAndEscapesTheLog) {
  SecretMasker masker({});
  std::string xml = JunitXml(SampleBuild(), masker);
  EXPECT_THAT(xml, HasSubstr("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"orders\" name=\"compile\" time=\"1.000\"/>"));
  EXPECT_THAT(xml, HasSubstr("<failure type=\"failed\" message=\"exit code 2\">FAIL &lt;x&gt; "
                             "&amp; \xEF\xBF\xBD[31mred"));
  EXPECT_THAT(xml, HasSubstr("<skipped message=\"skipped: need &apos;test&apos; failed\"/>"));
  EXPECT_THAT(xml, Not(HasSubstr("\x1b")));
  EXPECT_THAT(xml, Not(HasSubstr("\xff")));
}

TEST(ReportTest, JunitAndJsonAreWellFormedForAnyBytesAStepPrints) {
  const std::vector<std::string> logs = {
      "invalid \xff\xfe utf-8 \x80",
      "surrogate \xed\xa0\x80 (CESU) and \xed\xbf\xbf",
      "overlong \xc0\xaf and \xe0\x80\xaf",
      "noncharacters \xef\xbf\xbe \xef\xbf\xbf",
      std::string("controls \x01\x08\x0b\x0c\x1f\x7f and a NUL ") + '\0' + " end",
      "truncated \xe2\x82",
      "above U+10FFFF \xf4\x90\x80\x80 ]]> <![CDATA[",
  };
  SecretMasker masker({});
  for (const std::string& log : logs) {
    BuildRecord build = SampleBuild();
    build.steps[1].log_tail = log;
    build.steps[1].message = log;
    build.steps[0].outputs = {{"out", log}};
    build.context.branch = log;
    std::string junit = JunitXml(build, masker);
    auto parsed = xml::Document::Parse(junit);
    ASSERT_TRUE(parsed.has_value()) << log << ": " << parsed.error();
    std::string tail = parsed->Root().Find("failure").Text();
    EXPECT_TRUE(IsValidUtf8(tail)) << log;
    EXPECT_THAT(tail, HasSubstr(log.substr(0, log.find(' ')))) << log;
    auto report = nlohmann::json::parse(ReportJson(build, masker));
    EXPECT_TRUE(IsValidUtf8(report["build"]["branch"].get<std::string>())) << log;
  }
}

}  // namespace
}  // namespace runner
