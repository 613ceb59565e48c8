#include "runner/serve/serve_config.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace runner::serve {
namespace {

using runner::testing::TempDir;
using runner::testing::WriteTextFile;

class ServeConfigTest : public ::testing::Test {
 protected:
  std::expected<ServeConfig, std::string> Load(const std::string& text) {
    std::string file = dir_.path() + "/serve.yml";
    WriteTextFile(file, text);
    return LoadServeConfig(file, environment_);
  }

  TempDir dir_;
  Environment environment_ = {{"HOOK", "s3cret"}, {"TOKEN", "ghp_x"}, {"ADMIN", "adm"}};
};

TEST_F(ServeConfigTest, ReadsEverySettingWithItsDefaults) {
  auto config = Load(
      "repos:\n"
      "  - name: acme/orders\n"
      "    clone_url: https://github.com/acme/orders.git\n"
      "    secret_env: HOOK\n"
      "    token_env: TOKEN\n"
      "    cancel_running: feature/*\n"
      "jobs: 3\n"
      "stop_grace: 90s\n"
      "github_api: https://ghe.example.com/api/v3/\n"
      "admin_token_env: ADMIN\n");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->listen, "127.0.0.1:8080");
  EXPECT_EQ(config->url, "http://127.0.0.1:8080");
  EXPECT_EQ(config->jobs, 3);
  EXPECT_EQ(config->stop_grace, std::chrono::seconds(90));
  EXPECT_EQ(config->github_api, "https://ghe.example.com/api/v3");
  EXPECT_EQ(config->admin_token, "adm");
  EXPECT_TRUE(config->state_dir.starts_with("/")) << config->state_dir;
  ASSERT_EQ(config->repos.size(), 1u);
  const RepoConfig& repo = config->repos[0];
  EXPECT_EQ(repo.project, "orders");
  EXPECT_EQ(repo.pipeline, "pipeline.yml");
  EXPECT_EQ(repo.secret, "s3cret");
  EXPECT_EQ(repo.token, "ghp_x");
  EXPECT_EQ(repo.cancel_running, std::vector<std::string>{"feature/*"});
  EXPECT_EQ(config->FindRepo("acme/orders"), &repo);
  EXPECT_EQ(config->FindRepo("acme/other"), nullptr);
}

TEST_F(ServeConfigTest, ReportsEveryProblemAtItsPlace) {
  auto config = Load(
      "listn: 127.0.0.1:80\n"
      "jobs: 0\n"
      "repos:\n"
      "  - name: orders\n"
      "    clone_url: https://github.com/acme/orders.git\n"
      "    secret_env: UNSET_SECRET\n"
      "    pipeline: ../outside.yml\n"
      "  - name: acme/billing\n"
      "    secret_env: HOOK\n");
  ASSERT_FALSE(config);
  const std::string& error = config.error();
  EXPECT_NE(error.find("serve.yml:1:1: error: unknown key 'listn' in the server configuration "
                       "(did you mean 'listen'?)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("serve.yml:2:7: error: jobs: expected a whole number from 1 to 256"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("repos[0].name: expected the repository's full name, OWNER/NAME"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("serve.yml:6:17: error: repos[0].secret_env: the variable UNSET_SECRET is "
                       "not set"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("repos[0].pipeline: expected a path inside the repository"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("repos[1]: missing 'clone_url'"), std::string::npos) << error;
}

TEST_F(ServeConfigTest, ManyMachinesSettingsAndTheirChecks) {
  const std::string repos =
      "repos:\n"
      "  - name: acme/orders\n"
      "    clone_url: https://github.com/acme/orders.git\n"
      "    secret_env: HOOK\n";
  auto config = Load(repos +
                     "queue: https://sqs.eu-west-1.amazonaws.com/111111111111/builds.fifo\n"
                     "records: s3://bucket/runner/\n"
                     "visibility_timeout: 2m\n"
                     "poll_wait: 5s\n"
                     "log_interval: 1s\n"
                     "max_receives: 3\n");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->queue, "https://sqs.eu-west-1.amazonaws.com/111111111111/builds.fifo");
  EXPECT_EQ(config->records, "s3://bucket/runner/");
  EXPECT_EQ(config->visibility_timeout, std::chrono::minutes(2));
  EXPECT_EQ(config->poll_wait, std::chrono::seconds(5));
  EXPECT_EQ(config->log_interval, std::chrono::seconds(1));
  EXPECT_EQ(config->max_receives, 3);

  // --queue wins over the file's.
  std::string file = dir_.path() + "/serve.yml";
  auto given = LoadServeConfig(file, environment_, "file:///var/lib/runner/queue");
  ASSERT_TRUE(given) << given.error();
  EXPECT_EQ(given->queue, "file:///var/lib/runner/queue");

  auto bad = Load(repos +
                  "queue: file:///q\n"
                  "visibility_timeout: 1s\n"
                  "poll_wait: 30s\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("queue: needs 'records' too"), std::string::npos) << bad.error();
  EXPECT_NE(bad.error().find("serve.yml:6:21: error: visibility_timeout: expected from 3s"),
            std::string::npos)
      << bad.error();
  EXPECT_NE(bad.error().find("serve.yml:7:12: error: poll_wait: expected from 1s to 20s"),
            std::string::npos)
      << bad.error();
}

TEST_F(ServeConfigTest, AMissingFileIsAnErrorNamingIt) {
  auto config = LoadServeConfig(dir_.path() + "/absent.yml", environment_);
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("absent.yml: error: cannot read"), std::string::npos)
      << config.error();
  EXPECT_TRUE(config.error().ends_with("\n"));
}

TEST_F(ServeConfigTest, AHookWithoutASecretIsRefused) {
  auto config = Load("repos:\n  - name: acme/orders\n    clone_url: file:///srv/orders\n");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("missing 'secret_env'"), std::string::npos) << config.error();
}

}  // namespace
}  // namespace runner::serve
