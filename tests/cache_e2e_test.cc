// The step cache end to end (SPEC section 8): the built binary run twice on a real Git
// repository, and a shared cache on s3rver written only by the branches cache_write names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_util.h"
#include "tests/s3_server.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kPipeline[] = R"yaml(version: 1
project: app
steps:
  - id: compile
    cache:
      inputs: ["src/**", "!**/*.md"]
      outputs: [dist]
      env: [FLAVOUR]
    run: |
      echo "compiling $FLAVOUR"
      echo run >> runs.txt
      mkdir -p dist/lib
      cat src/*.txt > dist/app
      chmod 755 dist/app
      echo "lib $FLAVOUR" > dist/lib/data
      chmod 640 dist/lib/data
      echo "lines=$(cat src/*.txt | wc -l)" >> "$RUNNER_OUTPUT"
  - id: use
    env: {LINES: "${{ steps.compile.outputs.lines }}"}
    run: |
      test "$LINES" = 2
      test -x dist/app
      cat dist/app
)yaml";

int Mode(const std::string& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  return info.st_mode & 07777;
}

Json StepOf(const Json& report, const std::string& id) {
  for (const Json& step : report["steps"]) {
    if (step["id"] == id) return step;
  }
  ADD_FAILURE() << "no step " << id << " in " << report.dump();
  return {};
}

class CacheE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeGitRepo(dir_.path(), {{"pipeline.yml", kPipeline},
                              {"src/a.txt", "alpha\n"},
                              {"src/b.txt", "beta\n"},
                              {"src/NOTES.md", "not an input\n"}});
    env_["FLAVOUR"] = "plain";
  }
  RunResult Run(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"run", "pipeline.yml"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunRunner(args, dir_.path(), env_);
  }
  Json Report(const std::string& id, const std::string& state = ".runner") {
    return Json::parse(ReadTextFile(dir_ / (state + "/builds/" + id + "/report.json")));
  }
  int Runs() {
    std::string runs = ReadTextFile(dir_ / "runs.txt");
    return static_cast<int>(std::count(runs.begin(), runs.end(), '\n'));
  }

  TempDir dir_;
  std::map<std::string, std::string> env_ = BaseEnv();
};

TEST_F(CacheE2eTest, TheSecondRunIsAHitWithIdenticalFilesModesOutputsAndLog) {
  RunResult first = Run();
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  Json miss = StepOf(Report("app-main-1"), "compile");
  EXPECT_EQ(miss["cache"]["hit"], false);
  EXPECT_EQ(miss["cache"]["stored"], Json::array({"local"}));
  std::string key = miss["cache"]["key"];
  ASSERT_EQ(key.size(), 64u);
  std::string app = ReadTextFile(dir_ / "dist/app");
  std::string data = ReadTextFile(dir_ / "dist/lib/data");
  std::filesystem::remove_all(dir_ / "dist");

  // Another build number and an undeclared variable changed: neither is part of the key.
  env_["UNRELATED"] = "changed";
  RunResult second = Run();
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_EQ(Runs(), 1);
  Json hit = StepOf(Report("app-main-2"), "compile");
  EXPECT_EQ(hit["status"], "success");
  EXPECT_EQ(hit["cache"], Json({{"hit", true}, {"key", key}, {"from", "app-main-1"}}));
  EXPECT_EQ(hit["outputs"]["lines"], "2");
  EXPECT_EQ(StepOf(Report("app-main-2"), "use")["status"], "success");
  EXPECT_EQ(ReadTextFile(dir_ / "dist/app"), app);
  EXPECT_EQ(ReadTextFile(dir_ / "dist/lib/data"), data);
  EXPECT_EQ(Mode(dir_ / "dist/app"), 0755);
  EXPECT_EQ(Mode(dir_ / "dist/lib/data"), 0640);
  EXPECT_THAT(ReadTextFile(dir_ / ".runner/builds/app-main-2/logs/compile.log"),
              HasSubstr("compiling plain"));
  EXPECT_THAT(second.out,
              HasSubstr("[compile] success (cache hit " + key.substr(0, 12) + " from app-main-1)"));
}

TEST_F(CacheE2eTest, ADeclaredEnvValueOrAnInputChangedRunsTheStepAgain) {
  ASSERT_EQ(Run().exit_code, 0);
  env_["FLAVOUR"] = "extra";
  ASSERT_EQ(Run().exit_code, 0);
  EXPECT_EQ(Runs(), 2);
  EXPECT_EQ(ReadTextFile(dir_ / "dist/lib/data"), "lib extra\n");
  WriteTextFile(dir_ / "src/NOTES.md", "an excluded file changed\n");
  ASSERT_EQ(Run().exit_code, 0);
  EXPECT_EQ(Runs(), 2);
  WriteTextFile(dir_ / "src/b.txt", "gamma\n");
  ASSERT_EQ(Run().exit_code, 0);
  EXPECT_EQ(Runs(), 3);
  EXPECT_EQ(ReadTextFile(dir_ / "dist/app"), "alpha\ngamma\n");
}

TEST_F(CacheE2eTest, AFailedStepIsNeverStored) {
  WriteTextFile(dir_ / "pipeline.yml", R"(version: 1
project: app
steps:
  - id: flaky
    cache: {inputs: [src/a.txt]}
    run: |
      echo run >> runs.txt
      exit 3
)");
  EXPECT_EQ(Run().exit_code, 1);
  EXPECT_EQ(Run().exit_code, 1);
  EXPECT_EQ(Runs(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ / ".runner/cache/entries"));
}

TEST_F(CacheE2eTest, AStepWhoseConfigurationUsesTheBuildNumberNeverHits) {
  // Its expanded env differs per build, so its key does: correct, if never reused.
  WriteTextFile(dir_ / "pipeline.yml", R"(version: 1
project: app
steps:
  - id: stamp
    env: {NUMBER: "${{ build.number }}"}
    cache: {inputs: [src/a.txt]}
    run: echo "$NUMBER" >> runs.txt
)");
  ASSERT_EQ(Run().exit_code, 0);
  ASSERT_EQ(Run().exit_code, 0);
  EXPECT_EQ(Runs(), 2);
  EXPECT_NE(StepOf(Report("app-main-1"), "stamp")["cache"]["key"],
            StepOf(Report("app-main-2"), "stamp")["cache"]["key"]);
}

TEST_F(CacheE2eTest, TheCacheHoldsTheMaskedLogAndNoSecretOutput) {
  WriteTextFile(dir_ / "pipeline.yml", R"(version: 1
project: app
secrets: [TOKEN]
steps:
  - id: login
    cache: {inputs: [src/a.txt]}
    run: |
      echo run >> runs.txt
      echo "token is $TOKEN"
  - id: leak
    cache: {inputs: [src/a.txt]}
    run: echo "token=$TOKEN" >> "$RUNNER_OUTPUT"
)");
  env_["TOKEN"] = "s3cr3t-t0ken-value";
  RunResult first = Run();
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_EQ(StepOf(Report("app-main-1"), "leak")["cache"]["stored"], Json::array());
  EXPECT_THAT(ReadTextFile(dir_ / ".runner/builds/app-main-1/logs/leak.log"),
              HasSubstr("not stored: output 'token' holds a secret"));
  RunResult second = Run();
  ASSERT_EQ(second.exit_code, 0);
  EXPECT_EQ(Runs(), 1);
  EXPECT_THAT(ReadTextFile(dir_ / ".runner/builds/app-main-2/logs/login.log"),
              HasSubstr("token is ***"));
  for (const auto& file : std::filesystem::recursive_directory_iterator(dir_ / ".runner/cache")) {
    if (file.is_regular_file()) {
      EXPECT_THAT(ReadTextFile(file.path()), Not(HasSubstr("s3cr3t"))) << file.path();
    }
  }
}

TEST_F(CacheE2eTest, ABuiltInStepIsRestoredWithItsArtifacts) {
  WriteTextFile(dir_ / "pipeline.yml", R"(version: 1
project: app
steps:
  - id: package
    cache: {inputs: [src/a.txt], outputs: [out.zip]}
    zip: {dest: out.zip, files: [src/a.txt]}
)");
  ASSERT_EQ(Run().exit_code, 0);
  Json first = StepOf(Report("app-main-1"), "package");
  std::string zip = ReadTextFile(dir_ / "out.zip");
  std::filesystem::remove(dir_ / "out.zip");
  RunResult second = Run();
  ASSERT_EQ(second.exit_code, 0) << second.out;
  Json hit = StepOf(Report("app-main-2"), "package");
  EXPECT_EQ(hit["cache"]["hit"], true);
  EXPECT_EQ(hit["artifacts"], first["artifacts"]);
  EXPECT_EQ(hit["outputs"], first["outputs"]);
  EXPECT_EQ(ReadTextFile(dir_ / "out.zip"), zip);
}

TEST_F(CacheE2eTest, CacheMaxEvictsTheLocalCacheAfterTheBuild) {
  RunResult first = Run({"--cache-max", "0"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  // Nothing fits in 0 bytes: the entry stored is gone after the build, so the next one runs.
  ASSERT_EQ(Run().exit_code, 0);
  EXPECT_EQ(Runs(), 2);
  ASSERT_EQ(Run({"--cache-max", "1GiB"}).exit_code, 0);
  EXPECT_EQ(Runs(), 2);
  RunResult bad = Run({"--cache-max", "lots"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--cache-max 'lots'"));
}

TEST_F(CacheE2eTest, CacheFalseTellsTheStepSoThroughRunnerCache) {
  WriteTextFile(dir_ / "pipeline.yml", R"(version: 1
steps:
  - id: bake
    cache: false
    run: test "$RUNNER_CACHE" = off
  - id: other
    run: test -z "${RUNNER_CACHE:-}"
)");
  RunResult result = Run();
  EXPECT_EQ(result.exit_code, 0) << result.out;
}

// --- a shared cache on s3rver ---------------------------------------------------------------

class SharedCacheE2eTest : public CacheE2eTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    CacheE2eTest::SetUp();
    std::string pipeline = kPipeline;
    pipeline.insert(pipeline.find("steps:"),
                    "cache_store: s3://bkt/cache/\ncache_write: [main, \"release/*\"]\n");
    WriteTextFile(dir_ / "pipeline.yml", pipeline);
    env_["AWS_ACCESS_KEY_ID"] = "S3RVER";
    env_["AWS_SECRET_ACCESS_KEY"] = "S3RVER";
    env_["AWS_REGION"] = "us-east-1";
    env_["AWS_ENDPOINT_URL_S3"] = server_.endpoint();
    env_["AWS_EC2_METADATA_DISABLED"] = "true";
  }
  std::vector<std::string> SharedEntries() {
    auto store = OpenArtifactStore("s3://bkt/cache/", S3rverStoreOptions(server_.endpoint()));
    EXPECT_TRUE(store.has_value());
    auto names = (*store)->List("entries/");
    EXPECT_TRUE(names.has_value());
    return names.value_or(std::vector<std::string>());
  }

  S3rver server_;
};

TEST_F(SharedCacheE2eTest, APullRequestsBranchReadsButNeverWritesTheSharedStore) {
  RunResult feature = Run({"--branch", "feature/login", "--state-dir", dir_ / "pr-machine"});
  ASSERT_EQ(feature.exit_code, 0) << feature.out << feature.err;
  Json step = StepOf(Report("app-feature-login-1", "pr-machine"), "compile");
  EXPECT_EQ(step["cache"]["stored"], Json::array({"local"}));
  EXPECT_EQ(SharedEntries(), std::vector<std::string>());

  RunResult main = Run({"--branch", "main", "--state-dir", dir_ / "main-machine"});
  ASSERT_EQ(main.exit_code, 0) << main.out << main.err;
  step = StepOf(Report("app-main-1", "main-machine"), "compile");
  EXPECT_EQ(step["cache"]["stored"], Json::array({"local", "s3://bkt/cache/"}));
  EXPECT_EQ(SharedEntries().size(), 1u);
  EXPECT_EQ(Runs(), 2);

  // A third machine, on another branch: a hit from the shared store.
  std::filesystem::remove_all(dir_ / "dist");
  RunResult other = Run({"--branch", "feature/other", "--state-dir", dir_ / "third-machine"});
  ASSERT_EQ(other.exit_code, 0) << other.out << other.err;
  step = StepOf(Report("app-feature-other-1", "third-machine"), "compile");
  EXPECT_EQ(step["cache"]["hit"], true);
  EXPECT_EQ(step["cache"]["from"], "app-main-1");
  EXPECT_THAT(ReadTextFile(dir_ / "third-machine/builds/app-feature-other-1/logs/compile.log"),
              HasSubstr("from s3://bkt/cache/"));
  EXPECT_EQ(Runs(), 2);
  EXPECT_EQ(ReadTextFile(dir_ / "dist/app"), "alpha\nbeta\n");
  EXPECT_THAT(other.out, Not(HasSubstr("S3RVER")));
}

}  // namespace
}  // namespace runner::testing
