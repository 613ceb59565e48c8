// Bake skipping (SPEC section 8) end to end: `runner run` with a packer step whose Packer is
// tests/data/packer/fake-ami-packer, which registers real AMIs in moto_server's EC2 and prints
// amazon-ebs's artifact lines for them. A second build reuses the bake (Packer is not started,
// the outputs are the same); a deregistered AMI, --rebake, RUNNER_CACHE=off and a changed var
// bake again; source_ami is the most recent match. Skipped, saying so, where moto is absent.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runner/aws/ec2.h"
#include "runner/aws/query_api.h"
#include "tests/e2e_util.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/test_util.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Outputs = std::map<std::string, std::string>;

constexpr char kPipeline[] = R"(version: 1
project: orders
vars: {greeting: hello}
steps:
  - id: bake
    packer:
      template: packer/app.pkr.hcl
      vars: {app_zip: dist/app.zip, greeting: "${{ vars.greeting }}"}
      region: eu-west-1
)";

class BakeE2eTest : public MotoServerTest {
 protected:
  void SetUp() override {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MakeGitRepo(dir_.path(), {{"pipeline.yml", kPipeline},
                              {"packer/app.pkr.hcl", "source \"amazon-ebs\" \"app\" {}\n"},
                              {"dist/app.zip", "zip bytes"}});
    env_ = BaseEnv();
    env_["AWS_ENDPOINT_URL"] = moto().endpoint();
    env_["AWS_ACCESS_KEY_ID"] = "AKIDMOTO";
    env_["AWS_SECRET_ACCESS_KEY"] = "moto-secret-key";
    env_["AWS_REGION"] = "eu-west-1";
    env_["AWS_EC2_METADATA_DISABLED"] = "true";
    env_["PACKER"] = std::string(RUNNER_SOURCE_DIR) + "/tests/data/packer/fake-ami-packer";
    env_["BAKE_DIR"] = dir_.path();
    env_["BAKE_REGIONS"] = "eu-west-1 us-east-1";
  }

  // Runs build NUMBER; its bake step's outputs (empty when it failed, with a test failure).
  Outputs Build(int number, std::vector<std::string> extra = {},
                std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args = {"run", "--branch", "main", "--build-number",
                                     std::to_string(number)};
    args.insert(args.end(), extra.begin(), extra.end());
    std::map<std::string, std::string> run_env = env_;
    for (const auto& [name, value] : env) run_env[name] = value;
    last_ = RunRunner(args, dir_.path(), run_env);
    EXPECT_EQ(last_.exit_code, 0) << last_.out << last_.err;
    EXPECT_THAT(last_.out + last_.err, Not(HasSubstr("moto-secret-key")));
    auto report =
        nlohmann::json::parse(ReadTextFile(Record(number) + "/report.json"), nullptr, false);
    if (report.is_discarded()) return {};
    return report["steps"][0]["outputs"].get<Outputs>();
  }
  std::string Record(int number) const {
    return dir_ / (".runner/builds/orders-main-" + std::to_string(number));
  }
  std::string Log(int number) const { return ReadTextFile(Record(number) + "/logs/bake.log"); }
  // How many times Packer built (its `version` calls are not counted).
  size_t Bakes() const {
    std::string builds = ReadTextFile(dir_ / "builds");
    return static_cast<size_t>(std::count(builds.begin(), builds.end(), '\n'));
  }

  aws::AwsResult<aws::QueryAnswer> Ec2Call(const std::string& region, std::string_view action,
                                           const aws::Pairs& params) {
    aws::AwsClientOptions options;
    options.service = "ec2";
    options.region = region;
    options.endpoint = moto().endpoint();
    auto client = aws::AwsClient::Create(*http_, credentials_, options);
    EXPECT_TRUE(client.has_value()) << client.error();
    return aws::SendEc2Query(**client, action, aws::kEc2Version, params, std::string(action));
  }
  std::vector<aws::Ec2Image> Images(const std::string& region,
                                    const aws::DescribeImagesRequest& request) {
    aws::Ec2Options options;
    options.region = region;
    options.endpoint = moto().endpoint();
    auto ec2 = aws::Ec2Client::Create(*http_, credentials_, options);
    EXPECT_TRUE(ec2.has_value()) << ec2.error();
    auto images = (*ec2)->DescribeImages(request);
    EXPECT_TRUE(images.has_value()) << images.error();
    return images ? *images : std::vector<aws::Ec2Image>{};
  }
  std::string Register(const std::string& region, const std::string& name) {
    auto answer = Ec2Call(region, "RegisterImage", {{"Name", name}});
    EXPECT_TRUE(answer.has_value()) << answer.error().text;
    return answer ? answer->result.ChildText("imageId") : "";
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
  RunResult last_;
  std::unique_ptr<aws::HttpClient> http_ = aws::MakeCurlHttpClient();
  aws::StaticCredentialsProvider credentials_{aws::TestCredentials()};
};

TEST_F(BakeE2eTest, ASecondBuildReusesTheBakeUntilAnAmiIsGone) {
  Outputs first = Build(1);
  ASSERT_EQ(Bakes(), 1u) << Log(1);
  ASSERT_THAT(first["ami_id"], ::testing::StartsWith("ami-"));
  EXPECT_EQ(first["ami_id"], first["ami_eu_west_1"]);
  ASSERT_THAT(first["ami_us_east_1"], ::testing::StartsWith("ami-"));
  EXPECT_EQ(first["artifact_id"],
            "eu-west-1:" + first["ami_eu_west_1"] + ",us-east-1:" + first["ami_us_east_1"]);

  // Each AMI carries the key, the build, the bake's regions and size, in its own region.
  std::string log = Log(1);
  size_t at = log.find("runner: bake key ");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string key = log.substr(at + 17, 64);
  aws::DescribeImagesRequest tagged;
  tagged.owners = {"self"};
  tagged.filters = {{"tag:runner:bake-key", {key}}};
  for (const auto& [region, output] :
       {std::pair{"eu-west-1", "ami_eu_west_1"}, std::pair{"us-east-1", "ami_us_east_1"}}) {
    auto images = Images(region, tagged);
    ASSERT_EQ(images.size(), 1u) << region;
    EXPECT_EQ(images[0].id, first[output]);
    EXPECT_EQ(images[0].Tag("runner:bake-build"), "orders-main-1");
    EXPECT_EQ(images[0].Tag("runner:bake-regions"), "eu-west-1,us-east-1");
    EXPECT_EQ(images[0].Tag("runner:bake-amis"), "2");
    EXPECT_EQ(images[0].Tag("runner:bake-packer-build"), "amazon-ebs.app");
    EXPECT_EQ(images[0].Tag("runner:bake-builder-ids"), "mitchellh.amazonebs");
  }

  // Build 2: the same inputs (another build number), so the same bake: Packer does not build.
  Outputs second = Build(2);
  EXPECT_EQ(Bakes(), 1u) << Log(2);
  EXPECT_EQ(second, first);
  EXPECT_THAT(Log(2),
              HasSubstr(fmt::format("runner: bake skipped: AMIs eu-west-1:{}, us-east-1:{} carry "
                                    "runner:bake-key {} (built by orders-main-1)",
                                    first["ami_eu_west_1"], first["ami_us_east_1"], key)));
  EXPECT_THAT(last_.out, HasSubstr("bake skipped"));

  // One AMI of the bake deregistered: the next build bakes again, and tags the new AMIs.
  ASSERT_TRUE(Ec2Call("us-east-1", "DeregisterImage", {{"ImageId", first["ami_us_east_1"]}}));
  Outputs third = Build(3);
  EXPECT_EQ(Bakes(), 2u) << Log(3);
  EXPECT_THAT(Log(3), HasSubstr("made an AMI in us-east-1, and none there is available any more: "
                                "baking"));
  EXPECT_NE(third["ami_us_east_1"], first["ami_us_east_1"]);
  EXPECT_NE(third["ami_eu_west_1"], first["ami_eu_west_1"]);
  Outputs fourth = Build(4);
  EXPECT_EQ(Bakes(), 2u) << Log(4);
  EXPECT_EQ(fourth, third);
  EXPECT_THAT(Log(4), HasSubstr("(built by orders-main-3)"));
}

TEST_F(BakeE2eTest, RebakeCacheOffAndAChangedVarBake) {
  Build(1);
  ASSERT_EQ(Bakes(), 1u);
  Build(2, {"--rebake"});
  EXPECT_EQ(Bakes(), 2u) << Log(2);
  EXPECT_THAT(Log(2), HasSubstr("runner: baking whatever earlier bakes there are: --rebake"));
  Build(3, {}, {{"RUNNER_CACHE", "off"}});
  EXPECT_EQ(Bakes(), 3u) << Log(3);
  EXPECT_THAT(Log(3), HasSubstr("the step's cache is off"));
  // The bakes made regardless were tagged too: the next build reuses one of them, whole.
  Outputs reused = Build(4);
  EXPECT_EQ(Bakes(), 3u) << Log(4);
  EXPECT_THAT(Log(4), ::testing::ContainsRegex("\\(built by orders-main-[123]\\)\n"));

  Outputs changed = Build(5, {"--var", "greeting=bye"});
  EXPECT_EQ(Bakes(), 4u) << Log(5);
  EXPECT_NE(changed["ami_id"], reused["ami_id"]);
  Build(6, {"--var", "greeting=bye"});
  EXPECT_EQ(Bakes(), 4u) << Log(6);
  // So does the content of a file a var names.
  WriteTextFile(dir_ / "dist/app.zip", "other zip bytes");
  Build(7, {"--var", "greeting=bye"});
  EXPECT_EQ(Bakes(), 5u) << Log(7);
}

// A pipeline whose one packer step has no region and this `source_ami`.
std::string SourceAmiPipeline(const std::string& source_ami) {
  return "version: 1\nproject: orders\nsteps:\n  - id: bake\n    packer:\n"
         "      template: packer/app.pkr.hcl\n      source_ami: " +
         source_ami + "\n";
}

TEST_F(BakeE2eTest, SourceAmiIsTheMostRecentMatchAndPartOfTheKey) {
  WriteTextFile(dir_ / "pipeline.yml",
                SourceAmiPipeline(R"({owners: [self], filters: {name: "base-*"}})"));
  env_["BAKE_REGIONS"] = "eu-west-1";
  aws::DescribeImagesRequest bases;
  bases.owners = {"self"};
  bases.filters = {{"name", {"base-*"}}};
  // moto dates an image when it is registered, to the second (as AWS does): the next one is
  // registered once the clock has passed the last one's second.
  auto register_later = [&](const std::string& name) {
    auto images = Images("eu-west-1", bases);
    if (const aws::Ec2Image* last = aws::MostRecent(images)) {
      EXPECT_TRUE(AwaitCondition([&] {
        return std::chrono::system_clock::now() >= last->created + std::chrono::seconds(1);
      }));
    }
    return Register("eu-west-1", name);
  };
  std::string old_id = register_later("base-old");
  std::string new_id = register_later("base-new");
  Register("eu-west-1", "other-newest");
  ASSERT_EQ(aws::MostRecent(Images("eu-west-1", bases))->id, new_id);

  Build(1);
  ASSERT_EQ(Bakes(), 1u) << Log(1);
  EXPECT_THAT(ReadTextFile(dir_ / "builds"), HasSubstr("-var source_ami=" + new_id + " "));
  EXPECT_THAT(Log(1), HasSubstr(fmt::format("runner: source_ami: {} (base-new, created ", new_id)));
  EXPECT_THAT(Log(1), HasSubstr("the most recent of 2 image(s) in eu-west-1 of owners self "
                                "matching name=base-*, state=available"));
  // Without packer.region, earlier bakes are looked for where the source AMI was found.
  Build(2);
  EXPECT_EQ(Bakes(), 1u) << Log(2);

  // A newer base image is another bake.
  std::string newer_id = register_later("base-newer");
  Build(3);
  EXPECT_EQ(Bakes(), 2u) << Log(3);
  EXPECT_THAT(ReadTextFile(dir_ / "builds"), HasSubstr("-var source_ami=" + newer_id + " "));
  EXPECT_THAT(ReadTextFile(dir_ / "builds"), Not(HasSubstr(old_id)));

  WriteTextFile(
      dir_ / "pipeline.yml",
      SourceAmiPipeline(
          R"({owners: [self, amazon], filters: {name: "nothing-*", architecture: x86_64}})"));
  RunResult none = RunRunner({"run", "--branch", "main", "--build-number", "4"}, dir_.path(), env_);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.out + none.err,
              HasSubstr("packer.source_ami: no available image in eu-west-1 of owners self,amazon "
                        "matches name=nothing-*, architecture=x86_64, state=available"));
  EXPECT_EQ(Bakes(), 2u);
}

}  // namespace
}  // namespace runner::testing
