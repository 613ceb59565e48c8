// The built binary on real pipelines: real bash, real Git repositories, real files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/e2e_util.h"

namespace runner::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace fs = std::filesystem;

class CliTest : public ::testing::Test {
 protected:
  void Pipeline(const std::string& yaml) { WriteTextFile(dir_ / "pipeline.yml", yaml); }
  RunResult Runner(const std::vector<std::string>& args) {
    return RunRunner(args, dir_.path(), env_);
  }
  nlohmann::json Report(const std::string& build_id) {
    return nlohmann::json::parse(
        ReadTextFile(dir_ / (".runner/builds/" + build_id + "/report.json")));
  }
  std::string BuildFile(const std::string& build_id, const std::string& name) {
    return ReadTextFile(dir_ / (".runner/builds/" + build_id + "/" + name));
  }

  TempDir dir_;
  std::map<std::string, std::string> env_ = BaseEnv();
};

TEST_F(CliTest, ValidateAcceptsAGoodPipeline) {
  Pipeline("version: 1\nsteps:\n  - {id: compile, run: make}\n  - {id: test, run: make test}\n");
  RunResult result = Runner({"validate"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "pipeline.yml: ok (2 steps)\n");
}

TEST_F(CliTest, TheProjectsPipelinesAreValid) {
  for (const std::string name : {"example.yml", "aws-ami.yml"}) {
    RunResult result = RunRunner(
        {"validate", std::string(RUNNER_SOURCE_DIR) + "/pipelines/" + name}, dir_.path(), env_);
    EXPECT_EQ(result.exit_code, 0) << name << ": " << result.err;
    EXPECT_THAT(result.out, HasSubstr(": ok ("));
  }
}

TEST_F(CliTest, ValidateLintsTheTemplatesTheStepsName) {
  WriteTextFile(dir_.path() + "/cfn/template.yaml", R"(Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    UpdatePolicy:
      AutoScalingRollingUpdate:
        MinInstancesInService: 1
        MaxBatchSize: 4
    Properties:
      MinSize: 1
      MaxSize: 4
      DesiredCapacity: 2
      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]
Parameters:
  Size: {Type: Number}
)");
  Pipeline(
      "version: 1\nsteps:\n  - id: params\n    params: {dest: p.json, template: "
      "cfn/template.yaml, values: {Size: '2'}}\n");
  RunResult result = Runner({"validate"});
  EXPECT_EQ(result.exit_code, 2) << result.out;
  EXPECT_THAT(result.err, HasSubstr("cfn/template.yaml:11:7: error: resource 'Web': "
                                    "DesiredCapacity"));
  EXPECT_EQ(result.out, "");
}

TEST_F(CliTest, ValidateReportsEveryErrorWithPlaceAndCaret) {
  Pipeline(R"(version: 1
steps:
  - id: compile
    run: make
  - id: bake
    neds: [compile]
    run: echo ${{ build.branch }}
  - id: compile
    timeout: soon
    run: make
)");
  RunResult result = Runner({"validate", "pipeline.yml"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("pipeline.yml:6:5: error: unknown key 'neds' in step 'bake' "
                                    "(did you mean 'needs'?)\n    neds: [compile]\n    ^\n"));
  EXPECT_THAT(result.err, HasSubstr("pipeline.yml:7:"));
  EXPECT_THAT(result.err, HasSubstr("use $NAME instead"));
  EXPECT_THAT(result.err, HasSubstr("pipeline.yml:8:9: error: duplicate step id 'compile'"));
  EXPECT_THAT(result.err, HasSubstr("pipeline.yml:9:14: error:"));
  EXPECT_EQ(result.out, "");
}

TEST_F(CliTest, MalformedYamlIsAnErrorNeverACrash) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tabs", "version: 1\nsteps:\n\t- id: a\n"},
      {"unclosed quote", "version: 1\nsteps:\n  - id: \"a\n    run: x\n"},
      {"bad indentation", "version: 1\nsteps:\n  - id: a\n   run: x\n    needs: []\n"},
      {"empty", ""},
      {"not a mapping", "- just\n- a list\n"},
      {"deeply nested", "version: 1\nsteps: " + std::string(100000, '[') + "\n"},
      {"huge", "version: 1\nsteps:\n" + std::string(3 << 20, '#') + "\n"},
  };
  for (const auto& [name, text] : cases) {
    Pipeline(text);
    RunResult result = Runner({"validate"});
    EXPECT_EQ(result.exit_code, 2) << name << ": " << result.err;
    EXPECT_THAT(result.err, StartsWith("pipeline.yml:")) << name;
    EXPECT_THAT(result.err, HasSubstr("error:")) << name;
    EXPECT_THAT(result.err, Not(HasSubstr("terminate called"))) << name;
    RunResult run = Runner({"run"});
    EXPECT_EQ(run.exit_code, 2) << name;
    EXPECT_FALSE(fs::exists(dir_ / ".runner/builds")) << name;
  }
}

TEST_F(CliTest, MissingPipelineAndBadUsageExitTwo) {
  RunResult missing = Runner({"run", "nope.yml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "runner: error: cannot read nope.yml: No such file or directory\n");
  RunResult usage = Runner({"run", "--jobs", "zero"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("runner: error:"));
  RunResult no_command = Runner({});
  EXPECT_EQ(no_command.exit_code, 2);
  RunResult bad_var = Runner({"run", "--var", "novalue"});
  EXPECT_EQ(bad_var.exit_code, 2);
}

// Issue 9's usage class: each mistake gets a plain message and exit 2, takes no build number,
// and options take exactly the values they should.
TEST_F(CliTest, UsageMistakesGetPlainMessagesAndTakeNoBuildNumber) {
  Pipeline("version: 1\nvars: {store: s}\nsteps:\n  - {id: a, run: \"true\"}\n");
  RunResult unknown = Runner({"bogus"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("runner: error: unknown command 'bogus'"));
  RunResult typo = Runner({"rnu"});
  EXPECT_THAT(typo.err, HasSubstr("unknown command 'rnu' (did you mean 'run'?)"));
  RunResult zero = Runner({"run", "--jobs", "0"});
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_EQ(zero.err, "runner: error: --jobs must be at least 1, got 0\n");
  RunResult only = Runner({"run", "--only", "nope"});
  EXPECT_EQ(only.exit_code, 2);
  EXPECT_THAT(only.err, HasSubstr("no step 'nope'"));
  EXPECT_FALSE(fs::exists(dir_ / ".runner/build-number"));
  EXPECT_FALSE(fs::exists(dir_ / ".runner/builds"));
  // --var takes one value: the argument after it is the pipeline again.
  WriteTextFile(dir_ / "other.yml", "version: 1\nsteps:\n  - {id: other, run: \"true\"}\n");
  RunResult other = Runner({"run", "--var", "store=x", "other.yml"});
  EXPECT_EQ(other.exit_code, 0) << other.err;
  EXPECT_THAT(other.out, HasSubstr("[other] success"));
  // The first build that ran took number 1.
  EXPECT_EQ(ReadTextFile(dir_ / ".runner/build-number"), "1\n");
}

TEST_F(CliTest, VarValuesAreLiteralsAndUndeclaredOnesAreWarned) {
  Pipeline(
      "version: 1\nvars: {store: s}\nsteps:\n  - id: a\n    env: {S: \"${{ vars.store }}\"}\n"
      "    run: printf '%s' \"$S\" > seen\n");
  env_["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI";
  for (std::string value : {"${{ env.AWS_SECRET_ACCESS_KEY }}", "${{ build.branch }}", "${{"}) {
    fs::remove_all(dir_ / ".runner");
    RunResult result = Runner({"run", "--var", "store=" + value});
    EXPECT_EQ(result.exit_code, 0) << value << ": " << result.err;
    EXPECT_EQ(ReadTextFile(dir_ / "seen"), value);
  }
  RunResult typo = Runner({"validate", "--var", "stor=x"});
  EXPECT_EQ(typo.exit_code, 0);
  EXPECT_THAT(typo.err, HasSubstr("warning: --var stor: the pipeline declares no such var (did "
                                  "you mean 'store'?)"));
}

TEST_F(CliTest, VersionAndHelp) {
  RunResult version = Runner({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, StartsWith("runner "));
  RunResult help = Runner({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit status: 0"));
  EXPECT_THAT(help.out, HasSubstr("2 usage or pipeline error"));
  EXPECT_THAT(help.out, HasSubstr("Pipeline format:"));
}

TEST_F(CliTest, VersionPrintsTheVersion) {
  RunResult result = Runner({"version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, StartsWith("runner "));
}

TEST_F(CliTest, RunWritesLogsReportAndJunitAndPrefixesOutput) {
  MakeGitRepo(dir_.path(), {{"README.md", "hi\n"}});
  Pipeline(R"(version: 1
project: orders
steps:
  - id: compile
    run: |
      echo "compiling $RUNNER_BUILD_ID"
      echo "to stderr" >&2
      echo "version=1.2.3" >> "$RUNNER_OUTPUT"
  - id: test
    env: {VERSION: "${{ steps.compile.outputs.version }}"}
    run: echo "testing $VERSION"
)");
  RunResult result = Runner({"run"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("[compile] compiling orders-main-1\n"));
  EXPECT_THAT(result.out, HasSubstr("[compile] to stderr\n"));
  EXPECT_THAT(result.out, HasSubstr("[test] testing 1.2.3\n"));
  EXPECT_THAT(result.out, HasSubstr("[compile] started (run)\n"));
  EXPECT_THAT(result.out, HasSubstr("[test] success ("));

  auto report = Report("orders-main-1");
  EXPECT_EQ(report["status"], "success");
  EXPECT_EQ(report["build"]["project"], "orders");
  EXPECT_EQ(report["build"]["branch"], "main");
  EXPECT_EQ(report["build"]["number"], "1");
  EXPECT_EQ(report["build"]["commit"].get<std::string>().size(), 40u);
  EXPECT_EQ(report["steps"][0]["outputs"]["version"], "1.2.3");
  EXPECT_EQ(report["steps"][1]["status"], "success");
  EXPECT_EQ(BuildFile("orders-main-1", "logs/compile.log"), "compiling orders-main-1\nto stderr\n");
  EXPECT_EQ(
      std::system(
          ("xmllint --noout '" + (dir_ / ".runner/builds/orders-main-1/junit.xml") + "'").c_str()),
      0);
  // No temporary files are left next to the records.
  for (const auto& entry : fs::recursive_directory_iterator(dir_ / ".runner/builds")) {
    EXPECT_THAT(entry.path().filename().string(), Not(StartsWith("."))) << entry.path();
  }
}

TEST_F(CliTest, FailedStepSkipsDependantsExitsOneAndJunitHasTheTail) {
  Pipeline(R"(version: 1
project: p
steps:
  - {id: build, needs: [], run: "echo 'error: <missing> & broken'; exit 3"}
  - {id: publish, needs: [build], run: "touch published"}
  - {id: lint, needs: [], run: "touch linted"}
)");
  RunResult result = Runner({"run", "--branch", "main", "--build-number", "5"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_FALSE(fs::exists(dir_ / "published"));
  EXPECT_TRUE(fs::exists(dir_ / "linted"));
  auto report = Report("p-main-5");
  EXPECT_EQ(report["status"], "failed");
  EXPECT_EQ(report["steps"][0]["exit_code"], 3);
  EXPECT_EQ(report["steps"][1]["status"], "skipped");
  std::string junit = BuildFile("p-main-5", "junit.xml");
  EXPECT_THAT(junit, HasSubstr("<failure type=\"failed\" message=\"exit code 3\">error: "
                               "&lt;missing&gt; &amp; broken\n</failure>"));
}

TEST_F(CliTest, BuildNumbersAreKeptInTheStateDirAndNeverShared) {
  Pipeline("version: 1\nproject: p\nsteps:\n  - {id: a, run: \"true\"}\n");
  EXPECT_EQ(Runner({"run", "--branch", "main"}).exit_code, 0);
  EXPECT_EQ(Runner({"run", "--branch", "main"}).exit_code, 0);
  EXPECT_TRUE(fs::exists(dir_ / ".runner/builds/p-main-1/report.json"));
  EXPECT_TRUE(fs::exists(dir_ / ".runner/builds/p-main-2/report.json"));

  std::vector<std::unique_ptr<RunnerProcess>> runs;
  for (int i = 0; i < 6; ++i) {
    fs::create_directories(dir_ / ("out" + std::to_string(i)));
    runs.push_back(
        std::make_unique<RunnerProcess>(std::vector<std::string>{"run", "--branch", "main"},
                                        dir_.path(), env_, dir_ / ("out" + std::to_string(i))));
  }
  for (auto& run : runs) EXPECT_EQ(run->Wait().exit_code, 0);
  std::set<std::string> ids;
  for (const auto& entry : fs::directory_iterator(dir_ / ".runner/builds")) {
    ids.insert(entry.path().filename().string());
  }
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_TRUE(ids.contains("p-main-8"));
}

TEST_F(CliTest, ReusedBuildIdIsRefusedSoNoRecordIsOverwritten) {
  Pipeline("version: 1\nproject: p\nsteps:\n  - {id: a, run: \"true\"}\n");
  EXPECT_EQ(Runner({"run", "--branch", "main", "--build-number", "3"}).exit_code, 0);
  RunResult again = Runner({"run", "--branch", "main", "--build-number", "3"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
}

TEST_F(CliTest, ShellSyntaxInABranchNameIsOnlyData) {
  const std::string branch = "feature/x$(touch${IFS}PWNED)`touch${IFS}PWNED2`'\"";
  MakeGitRepo(dir_.path(), {{"README.md", "hi\n"}}, branch);
  Pipeline(R"(version: 1
project: app
steps:
  - id: show
    env: {FROM_EXPR: "${{ build.branch }}", ID: "${{ build.id }}"}
    run: |
      echo "branch=$RUNNER_BRANCH"
      echo "expr=$FROM_EXPR"
      echo "id=$ID"
)");
  RunResult result = Runner({"run"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("[show] branch=" + branch + "\n"));
  EXPECT_THAT(result.out, HasSubstr("[show] expr=" + branch + "\n"));
  const std::string id = "app-feature-x--touch--IFS-PWNED--touch--IFS-PWNED2----1";
  EXPECT_THAT(result.out, HasSubstr("[show] id=" + id + "\n"));
  EXPECT_TRUE(fs::exists(dir_ / (".runner/builds/" + id + "/report.json")));
  EXPECT_FALSE(fs::exists(dir_ / "PWNED"));
  EXPECT_FALSE(fs::exists(dir_ / "PWNED2"));

  // A newline in a branch given on the command line is data too.
  RunResult flag = Runner({"run", "--branch", "a\n$(touch PWNED3)"});
  EXPECT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_FALSE(fs::exists(dir_ / "PWNED3"));
}

TEST_F(CliTest, JenkinsEnvironmentGivesTheBuildContext) {
  MakeGitRepo(dir_.path(), {{"README.md", "hi\n"}});
  env_["JENKINS_URL"] = "http://jenkins.example.com/";
  env_["BUILD_NUMBER"] = "158";
  env_["JOB_NAME"] = "folder/orders";
  env_["GIT_BRANCH"] = "origin/feature/login";
  env_["GIT_COMMIT"] = "0123456789abcdef0123456789abcdef01234567";
  Pipeline("version: 1\nsteps:\n  - {id: a, run: \"echo $RUNNER_BUILD_ID\"}\n");
  RunResult result = Runner({"run"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto report = Report("orders-feature-login-158");
  EXPECT_EQ(report["build"]["trigger"], "jenkins");
  EXPECT_EQ(report["build"]["commit"], "0123456789abcdef0123456789abcdef01234567");
  EXPECT_THAT(result.out, HasSubstr("[a] orders-feature-login-158\n"));
}

TEST_F(CliTest, DryRunAndPlanRunNothingAndTakeNoBuildNumber) {
  Pipeline(R"(version: 1
project: p
steps:
  - {id: compile, run: "touch ran"}
  - {id: deploy, run: "touch ran", when: {branch: [release/*]}}
)");
  RunResult dry = Runner({"run", "--dry-run", "--branch", "main"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  RunResult plan = Runner({"plan", "--branch", "main"});
  EXPECT_EQ(plan.exit_code, 0);
  EXPECT_EQ(dry.out, plan.out);
  EXPECT_THAT(plan.out, HasSubstr("build p-main-1 "));
  EXPECT_THAT(plan.out, HasSubstr("deploy (run)  needs: compile  [skipped: branch 'main' "
                                  "matches none of release/*]"));
  EXPECT_FALSE(fs::exists(dir_ / "ran"));
  EXPECT_FALSE(fs::exists(dir_ / ".runner/builds"));
}

TEST_F(CliTest, OnlyVarAndJobsOptions) {
  Pipeline(R"(version: 1
project: p
vars: {target: dev}
steps:
  - {id: a, run: "touch a"}
  - {id: b, env: {T: "${{ vars.target }}"}, run: "echo $T > b"}
  - {id: c, run: "touch c"}
)");
  RunResult result = Runner({"run", "--only", "b", "--var", "target=prod", "-j", "1"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(fs::exists(dir_ / "a"));
  EXPECT_EQ(ReadTextFile(dir_ / "b"), "prod\n");
  EXPECT_FALSE(fs::exists(dir_ / "c"));
  RunResult unknown = Runner({"run", "--only", "zz"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--only: no step 'zz'"));
}

TEST_F(CliTest, StepTimeoutAndRetryWithRealProcesses) {
  Pipeline(R"(version: 1
project: p
steps:
  - {id: slow, needs: [], run: "sleep 60", timeout: 1s, kill_grace: 1s}
  - id: flaky
    needs: []
    retry: {limit: 2, delay: 100ms}
    run: |
      n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
      [ "$n" -ge 3 ]
)");
  auto start = std::chrono::steady_clock::now();
  RunResult result = Runner({"run", "--branch", "main"});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_LT(took, std::chrono::seconds(30));
  auto report = Report("p-main-1");
  EXPECT_EQ(report["steps"][0]["status"], "timed_out");
  EXPECT_EQ(report["steps"][1]["status"], "success");
  EXPECT_EQ(report["steps"][1]["attempts"], 3);
}

TEST_F(CliTest, SecretsAreMaskedEverywhereEvenSplitAcrossWrites) {
  env_["DB_PASSWORD"] = "correct-horse-battery";
  env_["AWS_SECRET_ACCESS_KEY"] = "aws-horse-secret-key";  // masked without being listed
  env_["SSH_KEY"] = "-----BEGIN-----\nAAAAsecretline\n-----END-----";
  Pipeline(R"(version: 1
project: p
secrets: [DB_PASSWORD, SSH_KEY]
steps:
  - id: leak
    run: |
      printf 'pw=%s' "${DB_PASSWORD:0:7}"; sleep 0.2; printf '%s\n' "${DB_PASSWORD:7}"
      echo "$SSH_KEY"
      echo "$SSH_KEY" | sed -n 2p
      echo "aws=$AWS_SECRET_ACCESS_KEY"
      echo "out=$DB_PASSWORD" >> "$RUNNER_OUTPUT"
      exit 1
)");
  RunResult result = Runner({"run", "--branch", "main"});
  EXPECT_EQ(result.exit_code, 1);
  std::string records = ReadTextFile(dir_ / ".runner/builds/p-main-1/report.json") +
                        ReadTextFile(dir_ / ".runner/builds/p-main-1/junit.xml") +
                        ReadTextFile(dir_ / ".runner/builds/p-main-1/logs/leak.log");
  for (const std::string& text : {result.out, result.err, records}) {
    EXPECT_THAT(text, Not(HasSubstr("horse"))) << text;
    EXPECT_THAT(text, Not(HasSubstr("secretline"))) << text;
  }
  EXPECT_THAT(result.out, HasSubstr("[leak] pw=***\n"));
  EXPECT_THAT(ReadTextFile(dir_ / ".runner/builds/p-main-1/logs/leak.log"),
              HasSubstr("pw=***\n***\n***\n"));
}

// libcurl is loaded by the first HTTP client, libgit2 by the first repository opened, libarchive
// by the first revision read, libcrypto by the first digest: a build of shell steps maps none of
// them outside Git, and inside a repository only libgit2 (for HEAD's branch and commit) and what
// it brings (Debian's libgit2 maps libcrypto through libssh2).
TEST_F(CliTest, BuildOfShellStepsLoadsLibrariesOnlyWhenNeeded) {
  Pipeline(R"(version: 1
project: p
steps:
  - id: check
    run: |
      for lib in libyaml libcurl libgit2 libarchive libcrypto; do
        if grep -q "/$lib" "/proc/$PPID/maps"; then echo "mapped $lib"; fi
      done
      echo "on $RUNNER_BRANCH at a commit of ${#RUNNER_COMMIT} digits"
)");
  RunResult outside = Runner({"run", "--branch", "main"});
  ASSERT_EQ(outside.exit_code, 0) << outside.out << outside.err;
  EXPECT_THAT(outside.out, HasSubstr("[check] mapped libyaml\n[check] on main at a commit of 0"));

  MakeGitRepo(dir_.path(), {{"README.md", "hi\n"}});
  RunResult inside = Runner({"run"});
  ASSERT_EQ(inside.exit_code, 0) << inside.out << inside.err;
  EXPECT_THAT(inside.out, HasSubstr("[check] mapped libyaml\n[check] mapped libgit2\n"));
  EXPECT_THAT(inside.out, HasSubstr("[check] on main at a commit of 40 digits\n"));
  EXPECT_THAT(inside.out, Not(HasSubstr("mapped libcurl")));
  EXPECT_THAT(inside.out, Not(HasSubstr("mapped libarchive")));
}

// One output file goes from step to step (so that no file is made or removed per step): each
// step still gets it empty and private, and one a step replaced by a link is never emptied
// through that link.
TEST_F(CliTest, EachStepGetsAnEmptyPrivateOutputFileAndALinkedOneIsLeftAlone) {
  WriteTextFile(dir_ / "kept.txt", "kept=not to be emptied\n");
  Pipeline(R"yaml(version: 1
project: p
steps:
  - id: first
    run: |
      echo "first=1" >> "$RUNNER_OUTPUT"
  - id: second
    run: |
      [ -f "$RUNNER_OUTPUT" ] && [ ! -s "$RUNNER_OUTPUT" ]
      [ "$(stat -c %a "$RUNNER_OUTPUT")" = 600 ]
      echo "second=2" >> "$RUNNER_OUTPUT"
  - id: linker
    run: |
      [ ! -s "$RUNNER_OUTPUT" ]
      ln -sf "$RUNNER_WORKSPACE/kept.txt" "$RUNNER_OUTPUT"
  - id: last
    run: |
      [ -f "$RUNNER_OUTPUT" ] && [ ! -L "$RUNNER_OUTPUT" ] && [ ! -s "$RUNNER_OUTPUT" ]
      echo "last=4" >> "$RUNNER_OUTPUT"
)yaml");
  RunResult result = Runner({"run", "--branch", "main"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  auto report = Report("p-main-1");
  EXPECT_EQ(report["steps"][0]["outputs"], nlohmann::json({{"first", "1"}}));
  EXPECT_EQ(report["steps"][1]["outputs"], nlohmann::json({{"second", "2"}}));
  EXPECT_EQ(report["steps"][3]["outputs"], nlohmann::json({{"last", "4"}}));
  EXPECT_EQ(report["steps"][2]["outputs"], nlohmann::json({{"kept", "not to be emptied"}}));
  EXPECT_EQ(ReadTextFile(dir_ / "kept.txt"), "kept=not to be emptied\n");
}

TEST_F(CliTest, TerminalModeShowsStatusAndTheFailedStepsOutput) {
  Pipeline(R"(version: 1
project: p
steps:
  - {id: quiet, run: "echo not shown"}
  - {id: broken, run: "echo shown because it failed; exit 1"}
)");
  // `script` gives the runner a terminal; its transcript is what a user sees.
  std::string command = "cd '" + dir_.path() +
                        "' && env -i PATH=/usr/bin:/bin TERM=xterm script -qec '" +
                        std::string(RUNNER_BIN) + " run --branch main' /dev/null > tty.out";
  RunResult tty;
  tty.exit_code = WEXITSTATUS(std::system(command.c_str()));
  tty.out = ReadTextFile(dir_ / "tty.out");
  EXPECT_EQ(tty.exit_code, 1);
  EXPECT_THAT(tty.out, HasSubstr("[1/2] quiet success"));
  EXPECT_THAT(tty.out, HasSubstr("[2/2] broken failed: exit code 1"));
  EXPECT_THAT(tty.out, HasSubstr("shown because it failed"));
  EXPECT_THAT(tty.out, Not(HasSubstr("not shown")));
}

// `timeout` stops a runner that would read or parse for ever: its 124 fails the test.
TEST_F(CliTest, EndlessOrHostilePipelinesEndInAnError) {
  Pipeline("!,");
  struct Case {
    std::string name;
    std::string before;  // a shell command that feeds the runner
    std::string args;
    bool too_large;
  };
  const std::vector<Case> cases = {
      {"/dev/zero", "", "validate /dev/zero", true},
      {"stdin from /dev/zero", "", "validate /dev/stdin < /dev/zero", true},
      {"an endless pipe", "yes |", "validate /dev/stdin", true},
      {"yaml-cpp's endless '!,'", "", "validate pipeline.yml", false},
      {"plan of '!,'", "", "plan pipeline.yml", false},
  };
  for (const Case& c : cases) {
    std::string command = "cd '" + dir_.path() + "' && " + c.before + " timeout 60 " +
                          std::string(RUNNER_BIN) + " " + c.args + " > out.txt 2> err.txt";
    int status = std::system(command.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 2) << c.name;
    std::string err = ReadTextFile(dir_ / "err.txt");
    EXPECT_THAT(err, HasSubstr("error:")) << c.name << ": " << err;
    if (c.too_large) {
      EXPECT_THAT(err, HasSubstr("larger than 1 MiB")) << c.name;
    }
  }
}

}  // namespace
}  // namespace runner::testing
