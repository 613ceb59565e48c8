// Built-in steps through the built binary: the example pipeline end to end, reproducible
// revisions from two fresh clones, and a real Packer bake interrupted by a signal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_util.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

std::string Sha256Of(const std::string& path) {
  std::string command = "sha256sum '" + path + "' > '" + path + ".sha'";
  EXPECT_EQ(std::system(command.c_str()), 0);
  return ReadTextFile(path + ".sha").substr(0, 64);
}

TEST(StepsE2eTest, ExamplePipelineBuildsAReleaseAndClonesGiveIdenticalRevisions) {
  TempDir dir;
  MakeExampleRepo(dir / "origin");
  Shell("git clone -q '" + (dir / "origin") + "' '" + (dir / "a") + "'");
  Shell("git clone -q '" + (dir / "origin") + "' '" + (dir / "b") + "'");
  // Clones get their own checkout times and, here, different file modes' unrelated bits.
  Shell("chmod -R g+w '" + (dir / "b") + "/pipelines' && touch -d '2030-01-01' '" + (dir / "b") +
        "'/pipelines/orders/deploy/scripts/*.sh");

  auto env = BaseEnv();
  for (const std::string clone : {"a", "b"}) {
    RunResult result = RunRunner({"run", "pipelines/example.yml"}, dir / clone, env);
    ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  }
  const std::string zip_a = dir / "a/pipelines/orders/dist/orders.zip";
  const std::string zip_b = dir / "b/pipelines/orders/dist/orders.zip";
  EXPECT_EQ(Sha256Of(zip_a), Sha256Of(zip_b));
  EXPECT_EQ(std::system(("unzip -tq '" + zip_a + "' >/dev/null").c_str()), 0);
  std::string listing_command = "zipinfo '" + zip_a + "' > '" + (dir / "zipinfo.txt") + "'";
  ASSERT_EQ(std::system(listing_command.c_str()), 0);
  std::string listing = ReadTextFile(dir / "zipinfo.txt");
  EXPECT_THAT(listing, HasSubstr("-rwxr-xr-x"));
  EXPECT_THAT(listing, HasSubstr("bin/orders"));
  EXPECT_THAT(listing, HasSubstr("26-Jan-02 03:04"));  // the commit's time

  auto params = nlohmann::json::parse(ReadTextFile(dir / "a/pipelines/orders/dist/params.json"));
  ASSERT_TRUE(params.is_array());
  bool ami = false;
  for (const auto& entry : params) {
    if (entry["ParameterKey"] == "AmiId") ami = entry["ParameterValue"] == "ami-0123456789abcdef0";
  }
  EXPECT_TRUE(ami) << params.dump();
  auto release = nlohmann::json::parse(ReadTextFile(dir / "a/pipelines/orders/dist/release.json"));
  EXPECT_EQ(release["Image"], "File");
  EXPECT_EQ(release["Version"], "orders-main-1");

  auto report =
      nlohmann::json::parse(ReadTextFile(dir / "a/.runner/builds/orders-main-1/report.json"));
  for (const auto& step : report["steps"]) {
    EXPECT_EQ(step["status"], "success") << step.dump();
    if (step["id"] == "package") {
      ASSERT_EQ(step["artifacts"].size(), 1u);
      EXPECT_EQ(step["artifacts"][0]["path"], "pipelines/orders/dist/orders.zip");
      EXPECT_EQ(step["artifacts"][0]["sha256"], Sha256Of(zip_a));
      EXPECT_EQ(step["outputs"]["sha256"], Sha256Of(zip_a));
    }
  }
}

TEST(StepsE2eTest, InvalidRevisionFailsBeforeAnythingIsWrittenOrPublished) {
  TempDir dir;
  MakeGitRepo(dir.path(), {{"appspec.yml",
                            "version: 0.0\nos: linux\nhooks:\n  Instal:\n"
                            "    - location: scripts/missing.sh\n"},
                           {"app.txt", "x\n"}});
  WriteTextFile(dir / "pipeline.yml", R"(version: 1
project: p
steps:
  - id: package
    zip: {dest: dist/app.zip, files: [appspec.yml, app.txt], codedeploy: true}
  - id: publish
    run: touch published
)");
  RunResult result = RunRunner({"run"}, dir.path());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.out, HasSubstr("appspec.yml:4:3"));
  EXPECT_THAT(result.out, HasSubstr("Instal"));
  EXPECT_FALSE(fs::exists(dir / "dist/app.zip"));
  EXPECT_FALSE(fs::exists(dir / "published"));
}

TEST(StepsE2eTest, InterruptedBakeCleansUpBeforeTheRunnerExits) {
  TempDir dir;
  fs::create_directories(dir / "out");
  fs::copy_file(std::string(RUNNER_SOURCE_DIR) + "/tests/data/packer/trap.json", dir / "trap.json");
  WriteTextFile(dir / "pipeline.yml", R"(version: 1
project: p
steps:
  - id: bake
    kill_grace: 30s
    packer: {template: trap.json, vars: {marker: m}}
)");
  RunnerProcess runner({"run", "--branch", "main", "--build-number", "1"}, dir.path(), BaseEnv(),
                       dir / "out");
  ASSERT_TRUE(AwaitCondition([&] { return fs::exists(dir / "m.started"); }));
  runner.Signal(SIGTERM);
  RunResult result = runner.Wait(std::chrono::seconds(60));
  EXPECT_EQ(result.exit_code, 143) << result.out;
  // The provisioner's 2 s cleanup finished before the runner exited.
  EXPECT_TRUE(fs::exists(dir / "m.cleaned"));
  auto report = nlohmann::json::parse(ReadTextFile(dir / ".runner/builds/p-main-1/report.json"));
  EXPECT_EQ(report["steps"][0]["status"], "cancelled");
  // Nothing of Packer or its provisioner is left: no process has the temp dir as its cwd.
  std::string check = "for p in /proc/[0-9]*; do [ \"$(readlink $p/cwd 2>/dev/null)\" = '" +
                      dir.path() + "' ] && echo $p; done > '" + (dir / "left.txt") + "'; true";
  ASSERT_EQ(std::system(check.c_str()), 0);
  EXPECT_EQ(ReadTextFile(dir / "left.txt"), "");
}

}  // namespace
}  // namespace runner::testing
