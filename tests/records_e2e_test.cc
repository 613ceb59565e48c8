// The built binary's records on any input (SPEC section 5): secrets never shown wherever they
// come from, bounded memory for endless lines, well-formed reports for any bytes, live logs, a
// lost log reported, and non-UTF-8 names that never abort a build.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runner/masker.h"
#include "runner/utf8.h"
#include "runner/xml.h"
#include "tests/e2e_util.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

class RecordsTest : public ::testing::Test {
 protected:
  void Pipeline(const std::string& yaml) { WriteTextFile(dir_ / "pipeline.yml", yaml); }
  RunResult Runner(const std::vector<std::string>& args) {
    return RunRunner(args, dir_.path(), env_);
  }
  std::string BuildFile(const std::string& build_id, const std::string& name) {
    return ReadTextFile(dir_ / (".runner/builds/" + build_id + "/" + name));
  }
  // The build's records, checked to be well-formed: report.json parses as JSON (so it is
  // UTF-8), junit.xml with libxml2 and with xmllint.
  nlohmann::json CheckedRecords(const std::string& build_id) {
    std::string junit_path = dir_ / (".runner/builds/" + build_id + "/junit.xml");
    EXPECT_TRUE(xml::Document::Parse(ReadTextFile(junit_path)).has_value()) << build_id;
    EXPECT_EQ(std::system(("xmllint --noout '" + junit_path + "'").c_str()), 0) << build_id;
    return nlohmann::json::parse(BuildFile(build_id, "report.json"));
  }

  TempDir dir_;
  std::map<std::string, std::string> env_ = BaseEnv();
};

TEST_F(RecordsTest, ASecretIsMaskedWhereverItsValueComesFromAndInEveryForm) {
  env_["FROM_RUNNER"] = "runner-horse";
  Pipeline(R"yml(version: 1
project: p
env: {FROM_PIPELINE: pipeline-horse}
secrets: [FROM_RUNNER, FROM_PIPELINE, TOKEN]
steps:
  - id: login
    run: echo "token=login-horse-42 p@ss" >> "$RUNNER_OUTPUT"
  - id: use
    env: {TOKEN: "${{ steps.login.outputs.token }}"}
    run: |
      echo "plain $TOKEN $FROM_RUNNER $FROM_PIPELINE"
      printf 'split %s' "${TOKEN:0:8}"; sleep 0.1; printf '%s\n' "${TOKEN:8}"
      echo "dsn postgres://u:login-horse-42%20p%40ss@h postgres://u:login-horse-42+p%40ss@h"
      echo "dsn lower login-horse-42%20p%40ss"
      echo "b64 $(printf %s "$TOKEN" | base64 -w0) $(printf %s "$TOKEN" | base64 -w0 | tr -d =)"
      echo "b64url $(printf %s "$FROM_RUNNER" | base64 -w0 | tr '+/' '-_')"
      echo "out=$TOKEN" >> "$RUNNER_OUTPUT"
      exit 1
)yml");
  RunResult result = Runner({"run", "--branch", "main"});
  EXPECT_EQ(result.exit_code, 1);
  auto report = CheckedRecords("p-main-1");
  std::string records = BuildFile("p-main-1", "report.json") + BuildFile("p-main-1", "junit.xml") +
                        BuildFile("p-main-1", "logs/use.log");
  SecretMasker forms({"login-horse-42 p@ss", "runner-horse", "pipeline-horse"});
  for (const std::string& text : {result.out, result.err, records}) {
    EXPECT_THAT(text, Not(HasSubstr("horse"))) << text;
    EXPECT_THAT(text, Not(HasSubstr("p%40ss"))) << text;
    EXPECT_EQ(forms.Mask(text), text) << "an encoded form shows in " << text;
  }
  EXPECT_THAT(result.out, HasSubstr("[use] plain *** *** ***\n"));
  EXPECT_THAT(result.out, HasSubstr("[use] split ***\n"));
  EXPECT_EQ(report["steps"][0]["outputs"]["token"], "***");
}

TEST_F(RecordsTest, ALineWithoutNewlineIsShownWholeInBoundedPieces) {
  env_["PW"] = "pw-horse-secret";
  // 1 MB of one line, the secret every 40000 bytes, so some fall on 64 KiB boundaries.
  Pipeline(R"(version: 1
project: p
secrets: [PW]
steps:
  - id: long
    run: |
      for i in $(seq 25); do head -c 39985 /dev/zero | tr '\0' a; printf %s "$PW"; done
)");
  RunResult result = Runner({"run", "--branch", "main"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::string expected;
  for (int i = 0; i < 25; ++i) expected += std::string(39985, 'a') + "***";
  EXPECT_EQ(BuildFile("p-main-1", "logs/long.log"), expected);
  std::string shown;
  size_t lines = 0;
  for (size_t at = 0, end; (end = result.out.find('\n', at)) != std::string::npos; at = end + 1) {
    std::string_view line = std::string_view(result.out).substr(at, end - at);
    if (!line.starts_with("[long] ") || line.starts_with("[long] started") ||
        line.starts_with("[long] success")) {
      continue;
    }
    EXPECT_LE(line.size(), 7u + 64 * 1024);
    shown += line.substr(7);
    ++lines;
  }
  EXPECT_EQ(shown, expected);
  EXPECT_GE(lines, expected.size() / (64 * 1024));
  EXPECT_THAT(result.out, Not(HasSubstr("horse")));
}

TEST_F(RecordsTest, JunitIsWellFormedForAnyBytesAStepPrints) {
  Pipeline(R"(version: 1
project: p
steps:
  - id: bytes
    run: |
      printf 'invalid \xff\xfe \x80\n'
      printf 'cesu \xed\xa0\x80 overlong \xc0\xaf \xe0\x80\xaf\n'
      printf 'nonchar \xef\xbf\xbe \xef\xbf\xbf big \xf4\x90\x80\x80\n'
      printf 'controls \x01\x08\x0b\x0c\x1b[31m\x7f ]]> <![CDATA[ truncated \xe2\x82'
      exit 1
)");
  RunResult result = Runner({"run", "--branch", "main"});
  EXPECT_EQ(result.exit_code, 1);
  CheckedRecords("p-main-1");
  auto junit = xml::Document::Parse(BuildFile("p-main-1", "junit.xml"));
  ASSERT_TRUE(junit.has_value());
  std::string tail = junit->Root().Find("failure").Text();
  EXPECT_TRUE(IsValidUtf8(tail));
  EXPECT_THAT(tail, HasSubstr("invalid "));
  EXPECT_THAT(tail, HasSubstr("truncated "));
}

TEST_F(RecordsTest, TheLogIsLiveWhileTheStepRuns) {
  Pipeline(R"(version: 1
project: p
steps:
  - id: wait
    run: |
      echo "waiting for go"
      until [ -e go ]; do sleep 0.05; done
      echo "went"
)");
  RunnerProcess runner({"run", "--branch", "main"}, dir_.path(), env_, dir_.path());
  std::string log = dir_ / ".runner/builds/p-main-1/logs/wait.log";
  // The step cannot end before the test has read its line from the log: `tail -f` works.
  ASSERT_TRUE(AwaitCondition([&] { return ReadTextFile(log) == "waiting for go\n"; }));
  WriteTextFile(dir_ / "go", "");
  RunResult result = runner.Wait();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(ReadTextFile(log), "waiting for go\nwent\n");
}

TEST_F(RecordsTest, ALogLostToAFullDiskIsReportedAndFailsTheBuild) {
  Pipeline(R"(version: 1
project: p
steps:
  - id: chatty
    run: head -c 300000 /dev/zero | tr '\0' a
)");
  // No file of the runner may grow past 100 kB: the log cannot, the records can. SIGXFSZ is
  // ignored (an ignored signal survives exec), so the write fails with EFBIG. The console goes
  // through a pipe, which the limit does not cover.
  std::string command = "cd '" + dir_.path() + "' && env -i PATH=/usr/bin:/bin TERM=dumb bash -c " +
                        "'trap \"\" XFSZ; prlimit --fsize=100000 " + RUNNER_BIN +
                        " run --branch main | tail -c 3000 > console.txt; exit ${PIPESTATUS[0]}'";
  int status = std::system(command.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::string console = ReadTextFile(dir_ / "console.txt");
  EXPECT_THAT(console, HasSubstr("the log"));
  EXPECT_THAT(console, HasSubstr("is incomplete"));
  EXPECT_THAT(console, HasSubstr("1 incomplete logs"));
  auto report = CheckedRecords("p-main-1");
  EXPECT_THAT(report["steps"][0]["log_error"].get<std::string>(), HasSubstr("is incomplete"));
}

TEST_F(RecordsTest, NonUtf8NamesAndOutputsNeverAbortABuild) {
  // A branch from the command line, from Jenkins, and a step's Latin-1 output used by a later
  // step's env and by a params step: each build ends with its records and its own exit code.
  Pipeline(R"(version: 1
project: p
steps:
  - id: latin
    run: printf 'name=caf\xe9\n' >> "$RUNNER_OUTPUT"
  - id: use
    env: {NAME: "${{ steps.latin.outputs.name }}", BRANCH: "${{ build.branch }}"}
    run: echo "name $NAME on $BRANCH"
  - id: params
    params: {dest: params.json, values: {Name: "${{ steps.latin.outputs.name }}"}}
)");
  auto check = [&](const std::string& build_id, const RunResult& result) {
    ASSERT_TRUE(fs::exists(dir_ / (".runner/builds/" + build_id + "/report.json")))
        << build_id << result.out << result.err;
    auto report = CheckedRecords(build_id);
    EXPECT_EQ(result.exit_code, report["status"] == "success" ? 0 : 1) << result.out;
    EXPECT_EQ(report["steps"][1]["status"], "success") << build_id;
    EXPECT_TRUE(IsValidUtf8(report["build"]["branch"].get<std::string>()));
  };
  check("p-r-lease-1", Runner({"run", "--branch", "r\xe9lease"}));
  env_["JENKINS_URL"] = "http://jenkins.example.com/";
  env_["BUILD_NUMBER"] = "9";
  env_["GIT_BRANCH"] = "origin/\xff";
  check("p---9", Runner({"run"}));
}

TEST_F(RecordsTest, ANonUtf8WorkspaceNeverAbortsABuild) {
  std::string workspace = dir_ / "ws-\xe9";
  fs::create_directories(workspace);
  WriteTextFile(workspace + "/pipeline.yml", R"(version: 1
project: p
steps:
  - id: show
    env: {WS: "${{ build.workspace }}"}
    run: echo "in $WS"
)");
  RunResult result = RunRunner({"run", "--branch", "main"}, workspace, env_);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("[show] in " + workspace + "\n"));
  std::string junit = workspace + "/.runner/builds/p-main-1/junit.xml";
  EXPECT_TRUE(xml::Document::Parse(ReadTextFile(junit)).has_value());
  EXPECT_EQ(std::system(("xmllint --noout '" + junit + "'").c_str()), 0);
  auto report =
      nlohmann::json::parse(ReadTextFile(workspace + "/.runner/builds/p-main-1/report.json"));
  EXPECT_EQ(report["status"], "success");
}

}  // namespace
}  // namespace runner::testing
