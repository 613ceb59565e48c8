#include "steps/packer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "runner/sha256.h"
#include "tests/config_from_yaml.h"
#include "tests/fake_step_io.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using ::runner::testing::ReadTextFile;
using ::runner::testing::TempDir;
using ::runner::testing::WriteTextFile;
using Outputs = std::map<std::string, std::string>;

const std::string kData = std::string(RUNNER_SOURCE_DIR) + "/tests/data/packer";
const std::string kPipelines = std::string(RUNNER_SOURCE_DIR) + "/pipelines";

// amazon-ebs output in the documented machine-readable form: the AMI copied to a second
// region, then repeated by a manifest post-processor.
constexpr std::string_view kAmazonEbs =
    "1609459200,,ui,say,==> amazon-ebs.orders: Creating AMI orders-1 from instance "
    "i-0123456789abcdef0\n"
    "1609459201,,ui,say,==> amazon-ebs.orders: Copying/Encrypting AMI (ami-0c2d) to other "
    "regions...\n"
    "1609459202,,ui,message,    amazon-ebs.orders: Copying to: eu-west-1\n"
    "1609459203,,ui,say,Build 'amazon-ebs.orders' finished after 7 minutes 3 seconds.\n"
    "1609459203,,ui,say,\\n==> Wait completed after 7 minutes 3 seconds\n"
    "1609459203,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:\n"
    "1609459203,amazon-ebs.orders,artifact-count,2\n"
    "1609459203,amazon-ebs.orders,artifact,0,builder-id,mitchellh.amazonebs\n"
    "1609459203,amazon-ebs.orders,artifact,0,id,eu-west-1:ami-0a1b%!(PACKER_COMMA)us-east-1:"
    "ami-0c2d\n"
    "1609459203,amazon-ebs.orders,artifact,0,string,AMIs were created:\\neu-west-1: "
    "ami-0a1b\\nus-east-1: ami-0c2d\\n\n"
    "1609459203,amazon-ebs.orders,artifact,0,files-count,0\n"
    "1609459203,amazon-ebs.orders,artifact,0,end\n"
    "1609459203,,ui,say,--> amazon-ebs.orders: AMIs were created:\\neu-west-1: "
    "ami-0a1b\\nus-east-1: ami-0c2d\\n\n"
    "1609459203,amazon-ebs.orders,artifact,1,builder-id,mitchellh.amazonebs\n"
    "1609459203,amazon-ebs.orders,artifact,1,id,eu-west-1:ami-0a1b%!(PACKER_COMMA)us-east-1:"
    "ami-0c2d\n"
    "1609459203,amazon-ebs.orders,artifact,1,string,AMIs were created:\\neu-west-1: "
    "ami-0a1b\\nus-east-1: ami-0c2d\\n\n"
    "1609459203,amazon-ebs.orders,artifact,1,files-count,0\n"
    "1609459203,amazon-ebs.orders,artifact,1,end\n"
    "1609459203,,ui,say,--> amazon-ebs.orders: AMIs were created:\\neu-west-1: "
    "ami-0a1b\\nus-east-1: ami-0c2d\\n\n";

Outputs ToMap(const std::vector<std::pair<std::string, std::string>>& outputs) {
  return Outputs(outputs.begin(), outputs.end());
}

PackerArtifact MakeArtifact(std::string build, int index, std::string builder_id, std::string id) {
  PackerArtifact artifact;
  artifact.build = std::move(build);
  artifact.index = index;
  artifact.builder_id = std::move(builder_id);
  artifact.id = std::move(id);
  return artifact;
}

// --- Machine-readable parsing ------------------------------------------------------------

TEST(PackerUnescapeTest, CommasAndNewlines) {
  EXPECT_EQ(UnescapeMachineReadable("a%!(PACKER_COMMA) b%!(PACKER_COMMA)c"), "a, b,c");
  EXPECT_EQ(UnescapeMachineReadable("\\n==> Builds finished\\nnext"),
            "\n==> Builds finished\nnext");
  EXPECT_EQ(UnescapeMachineReadable("crlf\\r\\nlf\\rcr"), "crlf\nlf\ncr");
  EXPECT_EQ(UnescapeMachineReadable("plain text: 100% done, \\t kept"),
            "plain text: 100% done, \\t kept");
  EXPECT_EQ(UnescapeMachineReadable(""), "");
}

TEST(PackerLineTest, SplitsFields) {
  auto line = ParseMachineReadableLine(
      "1609459203,amazon-ebs.orders,artifact,0,id,eu-west-1:ami-0a1b%!(PACKER_COMMA)us-east-1:"
      "ami-0c2d");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->timestamp, "1609459203");
  EXPECT_EQ(line->target, "amazon-ebs.orders");
  EXPECT_EQ(line->type, "artifact");
  EXPECT_EQ(line->data,
            (std::vector<std::string>{"0", "id", "eu-west-1:ami-0a1b,us-east-1:ami-0c2d"}));

  auto ui = ParseMachineReadableLine("1609459203,,ui,error,Build 'x' errored: a\\nb");
  ASSERT_TRUE(ui);
  EXPECT_EQ(ui->target, "");
  EXPECT_EQ(ui->data, (std::vector<std::string>{"error", "Build 'x' errored: a\nb"}));

  auto empty_id = ParseMachineReadableLine("1,f,artifact,1,id,");
  ASSERT_TRUE(empty_id);
  EXPECT_EQ(empty_id->data, (std::vector<std::string>{"1", "id", ""}));
}

TEST(PackerLineTest, RejectsOtherText) {
  EXPECT_FALSE(ParseMachineReadableLine("panic: runtime error: index out of range"));
  EXPECT_FALSE(ParseMachineReadableLine("goroutine 1 [running]:"));
  EXPECT_FALSE(ParseMachineReadableLine(""));
  EXPECT_FALSE(ParseMachineReadableLine("12x,,ui,say,hi"));
  EXPECT_FALSE(ParseMachineReadableLine("123,onlytwo"));
}

TEST(PackerOutputParserTest, AmazonEbsTwoRegionsWithManifestRepeat) {
  PackerOutputParser parser;
  std::string log = parser.Feed(kAmazonEbs);
  log += parser.Finish();

  // Human lines unescaped, one per line; artifact lines not shown.
  EXPECT_NE(
      log.find("==> amazon-ebs.orders: Copying/Encrypting AMI (ami-0c2d) to other regions..."),
      std::string::npos);
  EXPECT_NE(log.find("\n==> Builds finished. The artifacts of successful builds are:\n"),
            std::string::npos);
  EXPECT_NE(log.find("--> amazon-ebs.orders: AMIs were created:\neu-west-1: ami-0a1b\nus-east-1: "
                     "ami-0c2d\n"),
            std::string::npos);
  EXPECT_EQ(log.find("PACKER_COMMA"), std::string::npos);
  EXPECT_EQ(log.find("\\n"), std::string::npos);
  EXPECT_EQ(log.find("artifact,"), std::string::npos);
  EXPECT_EQ(log.find("mitchellh"), std::string::npos);

  ASSERT_EQ(parser.artifacts().size(), 2u);
  EXPECT_EQ(parser.artifacts()[0].id, "eu-west-1:ami-0a1b,us-east-1:ami-0c2d");
  EXPECT_EQ(parser.artifacts()[0].description,
            "AMIs were created:\neu-west-1: ami-0a1b\nus-east-1: ami-0c2d\n");
  EXPECT_EQ(parser.artifacts()[1].index, 1);
  ASSERT_EQ(DistinctArtifacts(parser.artifacts()).size(), 1u);

  auto outputs = PackerOutputs(parser.artifacts(), "");
  ASSERT_TRUE(outputs) << outputs.error();
  Outputs map = ToMap(*outputs);
  EXPECT_EQ(map["artifact_id"], "eu-west-1:ami-0a1b,us-east-1:ami-0c2d");
  EXPECT_EQ(map["ami_id"], "ami-0a1b");  // the first pair: Packer sorts them by region
  EXPECT_EQ(map["ami_eu_west_1"], "ami-0a1b");
  EXPECT_EQ(map["ami_us_east_1"], "ami-0c2d");
  EXPECT_EQ(nlohmann::json::parse(map["artifacts"]),
            nlohmann::json::parse(R"([{"build": "amazon-ebs.orders", "builder_id":
                "mitchellh.amazonebs", "id": "eu-west-1:ami-0a1b,us-east-1:ami-0c2d"}])"));

  auto in_us = PackerOutputs(parser.artifacts(), "us-east-1");
  ASSERT_TRUE(in_us) << in_us.error();
  EXPECT_EQ(ToMap(*in_us)["ami_id"], "ami-0c2d");
}

TEST(PackerOutputParserTest, StreamingInPiecesGivesTheSameResult) {
  PackerOutputParser whole;
  std::string whole_log = whole.Feed(kAmazonEbs) + whole.Finish();
  PackerOutputParser pieces;
  std::string pieces_log;
  for (size_t i = 0; i < kAmazonEbs.size(); i += 7)
    pieces_log += pieces.Feed(kAmazonEbs.substr(i, 7));
  pieces_log += pieces.Finish();
  EXPECT_EQ(pieces_log, whole_log);
  ASSERT_EQ(pieces.artifacts().size(), whole.artifacts().size());
  EXPECT_EQ(pieces.artifacts()[0].id, whole.artifacts()[0].id);
}

TEST(PackerOutputParserTest, SeveralBuildsSeveralArtifactsEmptyIdsAndDuplicates) {
  PackerOutputParser parser;
  std::string log = parser.Feed(
      "1,image,artifact-count,3\n"
      "1,image,artifact,0,builder-id,packer.file\n"
      "1,image,artifact,0,id,File\n"
      "1,image,artifact,0,string,Stored file: image.txt\n"
      "1,image,artifact,0,files-count,1\n"
      "1,image,artifact,0,file,0,image.txt\n"
      "1,image,artifact,0,end\n"
      "1,image,artifact,1,builder-id,packer.post-processor.checksum\n"
      "1,image,artifact,1,id,\n"
      "1,image,artifact,1,files-count,2\n"
      "1,image,artifact,1,file,0,image.txt\n"
      "1,image,artifact,1,file,1,sums%!(PACKER_COMMA)v1.txt\n"
      "1,image,artifact,1,end\n"
      "1,image,artifact,2,builder-id,packer.file\n"
      "1,image,artifact,2,id,File\n"
      "1,image,artifact,2,end\n"
      "1,vm,artifact-count,2\n"
      "1,vm,artifact,0,builder-id,fnoeding.null\n"
      "1,vm,artifact,0,id,Null\n"
      "1,vm,artifact,0,end\n"
      "1,vm,artifact,1,builder-id,packer.post-processor.docker-tag\n"
      "1,vm,artifact,1,id,Null\n"
      "1,vm,artifact,1,end\n"
      "1,vm,artifact,2,builder-id,fnoeding.null\n"
      "1,vm,artifact,2,id,Null\n"
      "1,vm,artifact,2,end");  // no final newline: Finish takes it
  log += parser.Finish();
  EXPECT_EQ(log, "");
  ASSERT_EQ(parser.artifacts().size(), 6u);
  EXPECT_EQ(parser.artifacts()[1].files, (std::vector<std::string>{"image.txt", "sums,v1.txt"}));
  EXPECT_EQ(parser.artifacts()[5].id, "Null");  // the unterminated last line was parsed

  auto distinct = DistinctArtifacts(parser.artifacts());
  ASSERT_EQ(distinct.size(), 3u);
  EXPECT_EQ(distinct[0].build, "image");
  EXPECT_EQ(distinct[1].builder_id, "fnoeding.null");
  // Same id from a different builder (a post-processor's own artifact) is kept.
  EXPECT_EQ(distinct[2].builder_id, "packer.post-processor.docker-tag");

  auto outputs = PackerOutputs(parser.artifacts(), "");
  ASSERT_TRUE(outputs) << outputs.error();
  Outputs map = ToMap(*outputs);
  EXPECT_EQ(map["artifact_id"], "File");
  EXPECT_EQ(map.count("ami_id"), 0u);
  auto list = nlohmann::json::parse(map["artifacts"]);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1],
            nlohmann::json::parse(R"({"build":"vm","builder_id":"fnoeding.null","id":"Null"})"));
}

TEST(PackerOutputParserTest, UiLinesAndLastError) {
  PackerOutputParser parser;
  std::string log = parser.Feed(
      "1,,ui,say,==> null: Running local shell script: /tmp/packer-shell1\n"
      "1,,ui,message,    null: a%!(PACKER_COMMA) b\n"
      "1,,ui,error,==> null: first\\nsecond\n"
      "not machine readable at all\n"
      "1,null,error,Script exited with non-zero exit status: 1\n"
      "1,,error-count,1\n"
      "1,,ui,error,\\n==> Some builds didn't complete successfully and had errors:\n"
      "1,,ui,error,--> null: Script exited with non-zero exit status: 1\\n\\n\n");
  EXPECT_EQ(log,
            "==> null: Running local shell script: /tmp/packer-shell1\n"
            "    null: a, b\n"
            "==> null: first\nsecond\n"
            "not machine readable at all\n"
            "null: error: Script exited with non-zero exit status: 1\n"
            "\n==> Some builds didn't complete successfully and had errors:\n"
            "--> null: Script exited with non-zero exit status: 1\n");
  EXPECT_EQ(parser.last_error(), "--> null: Script exited with non-zero exit status: 1");
}

TEST(PackerAmiTest, ParsesRegionAmiLists) {
  auto two = ParseAmiList("us-east-1:ami-1,eu-west-1:ami-2");
  ASSERT_TRUE(two);
  EXPECT_EQ(*two, (std::vector<std::pair<std::string, std::string>>{{"us-east-1", "ami-1"},
                                                                    {"eu-west-1", "ami-2"}}));
  auto one = ParseAmiList("us-gov-west-1:ami-0123456789abcdef0");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1u);
  EXPECT_FALSE(ParseAmiList(""));
  EXPECT_FALSE(ParseAmiList("File"));
  EXPECT_FALSE(ParseAmiList("us-east-1:ami-1,File"));
  EXPECT_FALSE(ParseAmiList("us-east-1:ami-"));
  EXPECT_FALSE(ParseAmiList("us-east-1:snap-1"));
  EXPECT_FALSE(ParseAmiList("sha256:0123abcd"));  // a docker image id
}

TEST(PackerAmiTest, TwoBuildersOneRegionEach) {
  std::vector<PackerArtifact> artifacts = {
      MakeArtifact("amazon-ebs.us", 0, "mitchellh.amazonebs", "us-east-1:ami-1"),
      MakeArtifact("amazon-ebs.eu", 0, "mitchellh.amazonebs", "eu-west-1:ami-2"),
      MakeArtifact("amazon-ebs.us2", 0, "mitchellh.amazonebs", "us-east-1:ami-3"),
  };
  auto outputs = PackerOutputs(artifacts, "");
  ASSERT_TRUE(outputs) << outputs.error();
  Outputs map = ToMap(*outputs);
  // Builds in name order (issue 9): amazon-ebs.eu first, then amazon-ebs.us, amazon-ebs.us2.
  EXPECT_EQ(map["artifact_id"], "eu-west-1:ami-2");
  EXPECT_EQ(map["ami_id"], "ami-2");
  EXPECT_EQ(map["ami_us_east_1"], "ami-1");  // the first build's AMI in that region
  EXPECT_EQ(map["ami_eu_west_1"], "ami-2");

  auto eu = PackerOutputs(artifacts, "eu-west-1");
  ASSERT_TRUE(eu) << eu.error();
  EXPECT_EQ(ToMap(*eu)["ami_id"], "ami-2");
}

TEST(PackerAmiTest, RegionWithoutAnAmiIsAnError) {
  std::vector<PackerArtifact> artifacts = {MakeArtifact(
      "amazon-ebs.orders", 0, "mitchellh.amazonebs", "us-east-1:ami-1,eu-west-1:ami-2")};
  auto outputs = PackerOutputs(artifacts, "ap-south-1");
  ASSERT_FALSE(outputs);
  EXPECT_NE(outputs.error().find("'ap-south-1'"), std::string::npos) << outputs.error();
  EXPECT_NE(outputs.error().find("us-east-1, eu-west-1"), std::string::npos) << outputs.error();

  std::vector<PackerArtifact> files = {MakeArtifact("image", 0, "packer.file", "File")};
  auto no_ami = PackerOutputs(files, "us-east-1");
  ASSERT_FALSE(no_ami);
  EXPECT_NE(no_ami.error().find("no AMI"), std::string::npos) << no_ami.error();
}

TEST(PackerAmiTest, NoIdIsAnError) {
  EXPECT_FALSE(PackerOutputs({}, ""));
  std::vector<PackerArtifact> empty = {
      MakeArtifact("image", 0, "packer.post-processor.artifice", "")};
  auto outputs = PackerOutputs(empty, "");
  ASSERT_FALSE(outputs);
  EXPECT_NE(outputs.error().find("packer build produced no artifact id"), std::string::npos);
}

// --- Configuration and command line --------------------------------------------------------

// The configuration as the run parses it; the diagnostics on error.
Result<PackerConfig> ParseConfig(const std::string& text) {
  Diagnostics diags("pipeline.yml", text);
  PackerConfig config = PackerKind().Parse(testing::ExpandedConfig(text), diags);
  if (diags.HasErrors()) return Fail(diags.Format());
  return config;
}

TEST(PackerConfigTest, ParsesAndBuildsTheCommand) {
  auto config = ParseConfig(R"({
      "template": "packer/app.pkr.hcl",
      "vars": {"app_zip": "dist/app.zip", "note": "a=b, c"},
      "var_files": ["packer/prod.pkrvars.hcl", "packer/extra.json"],
      "only": ["amazon-ebs.app", "amazon-ebs.eu"],
      "region": "eu-west-1"})");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->region, "eu-west-1");
  auto argv = PackerBuildCommand("/usr/bin/packer", *config, "/w/packer/app.pkr.hcl",
                                 {"/w/packer/prod.pkrvars.hcl", "/w/packer/extra.json"});
  // No var value on the command line (issue 9): vars go through PKR_VAR_ or a private file.
  EXPECT_EQ(argv, (std::vector<std::string>{
                      "/usr/bin/packer", "build", "-machine-readable", "-color=false", "-var-file",
                      "/w/packer/prod.pkrvars.hcl", "-var-file", "/w/packer/extra.json", "-only",
                      "amazon-ebs.app,amazon-ebs.eu", "/w/packer/app.pkr.hcl"}));

  auto minimal = ParseConfig(R"({"template": "t.json", "only": "a"})");
  ASSERT_TRUE(minimal) << minimal.error();
  EXPECT_EQ(PackerBuildCommand("packer", *minimal, "t.json", {}),
            (std::vector<std::string>{"packer", "build", "-machine-readable", "-color=false",
                                      "-only", "a", "t.json"}));
}

TEST(PackerConfigTest, RejectsBadConfiguration) {
  EXPECT_FALSE(ParseConfig(R"({})"));
  EXPECT_FALSE(ParseConfig(R"({"template": ""})"));
  EXPECT_FALSE(ParseConfig(R"({"template": "t", "vars": ["a"]})"));
  EXPECT_FALSE(ParseConfig(R"({"template": "t", "only": [""]})"));
  EXPECT_FALSE(ParseConfig(R"({"template": "t", "region": "EU WEST"})"));
  EXPECT_FALSE(ParseConfig(R"("t")"));
}

TEST(PackerFindTest, PackerVariableThenPath) {
  TempDir dir;
  auto on_path = FindPacker({{"PATH", "/nonexistent:/usr/bin:/bin"}}, dir.path());
  ASSERT_TRUE(on_path) << on_path.error();
  EXPECT_EQ(*on_path, "/usr/bin/packer");

  auto explicit_path = FindPacker({{"PACKER", "/usr/bin/packer"}, {"PATH", "/bin"}}, dir.path());
  ASSERT_TRUE(explicit_path) << explicit_path.error();
  EXPECT_EQ(*explicit_path, "/usr/bin/packer");

  auto missing = FindPacker({{"PACKER", "/nonexistent"}, {"PATH", "/usr/bin:/bin"}}, dir.path());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("packer not found"), std::string::npos);
  EXPECT_NE(missing.error().find("PACKER=/nonexistent"), std::string::npos);
  EXPECT_NE(missing.error().find("apt-get install packer"), std::string::npos);

  auto not_on_path = FindPacker({{"PATH", dir.path()}}, dir.path());
  ASSERT_FALSE(not_on_path);
  EXPECT_NE(not_on_path.error().find("install it (apt-get install packer) or set PACKER"),
            std::string::npos)
      << not_on_path.error();
}

// --- Validation ------------------------------------------------------------------------------

// The diagnostics of `packer:`'s value, written as YAML.
std::string Validate(const std::string& yaml) {
  Diagnostics diags("pipeline.yml", yaml);
  PackerKind().Check(testing::ConfigFromYaml(yaml), diags);
  return diags.Format();
}

TEST(PackerValidateTest, AcceptsFullAndShortConfigurations) {
  EXPECT_EQ(Validate(R"(template: packer/app.pkr.json
vars: {app_zip: dist/app.zip, version: "${{ build.id }}"}
var_files: [packer/prod.pkrvars.hcl]
only: [amazon-ebs.app]
region: eu-west-1
)"),
            "");
  EXPECT_EQ(
      Validate(
          R"({template: packer/app.pkr.hcl, only: amazon-ebs.app, region: "${{ vars.region }}"})"),
      "");
}

TEST(PackerValidateTest, ReportsEveryProblemAtItsPlace) {
  std::string out = Validate(R"(templat: packer/app.pkr.json
vars: {app_zip: [a, b], "a=b": c}
var_files: {a: b}
only: [amazon-ebs.app, ""]
region: "eu west"
)");
  EXPECT_NE(out.find("pipeline.yml:1:1: error: unknown key 'templat' in packer (did you mean "
                     "'template'?)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("missing 'template'"), std::string::npos) << out;
  EXPECT_NE(out.find("pipeline.yml:2:17: error: expected a string for 'packer.vars.app_zip'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("pipeline.yml:2:25: error: 'a=b' is not a Packer variable name"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("pipeline.yml:3:12: error: expected a list for 'packer.var_files'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("pipeline.yml:4:24: error: 'packer.only' is empty"), std::string::npos) << out;
  EXPECT_NE(out.find("pipeline.yml:5:9: error: 'packer.region' must be an AWS region"),
            std::string::npos)
      << out;

  EXPECT_NE(Validate("app.json").find("expected a mapping for 'packer'"), std::string::npos);
  EXPECT_NE(Validate("template: ''").find("'packer.template' is empty"), std::string::npos);
}

// One Parse serves both: an expression passes Check as written; the same tree with the value it
// expands to fails Execute with Check's message for that value, at the same place.
TEST(PackerValidateTest, OneParseChecksTheWrittenAndTheExpandedConfig) {
  const std::string written = "template: t.json\nregion: \"${{ vars.region }}\"\n";
  EXPECT_EQ(Validate(written), "");
  ConfigNode config = testing::ConfigFromYaml(written);
  config.fields[1].second.scalar.text = "EU WEST";
  testing::MarkExpanded(config);
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = PackerKind().Execute(config, io);  // fails before it needs a supervision
  ASSERT_FALSE(status);
  Diagnostics literal("pipeline.yml", "");
  PackerKind().Check(testing::ConfigFromYaml("template: t.json\nregion: EU WEST\n"), literal);
  EXPECT_EQ(status.error(), literal.Format());
  EXPECT_EQ(status.error(),
            "pipeline.yml:2:9: error: 'packer.region' must be an AWS region such as eu-west-1, got "
            "'EU WEST'\n");
  EXPECT_EQ(io.log, "");
}

TEST(PackerKindTest, KillGraceIsTenMinutes) {
  EXPECT_EQ(PackerKind().name(), "packer");
  EXPECT_EQ(PackerKind().default_kill_grace(), std::chrono::minutes(10));
}

// --- Real Packer runs ----------------------------------------------------------------------

ConfigNode Config(const std::string& json) { return testing::ExpandedConfig(json); }

// Runs the kind as `runner __step` would, with the process's one supervision (made here unless
// the test gave one).
Status Execute(const ConfigNode& config, FakeStepIo& io) {
  std::unique_ptr<ProcessRunner> processes;
  if (!io.process_runner) {
    processes = MakePosixProcessRunner();
    io.process_runner = processes.get();
  }
  Status status = PackerKind().Execute(config, io);
  if (processes) io.process_runner = nullptr;
  return status;
}

TEST(PackerRunTest, JsonTemplateWithVarsVarFilesAndOnly) {
  TempDir dir;
  FakeStepIo io(dir.path());
  auto config = Config(R"({"template": ")" + kData + R"(/build.json",
      "vars": {"greeting": "hi, there"}, "var_files": [")" +
                       kData + R"(/vars.json"],
      "only": ["image"]})");
  Status status = Execute(config, io);
  ASSERT_TRUE(status) << status.error() << "\n" << io.log;

  // Vars and var files reached the build, and its human lines are unescaped in the log.
  EXPECT_NE(io.log.find("    image: greeting=hi, there, color=blue\n"), std::string::npos)
      << io.log;
  EXPECT_NE(io.log.find("    image: first\n"), std::string::npos) << io.log;
  EXPECT_NE(io.log.find("--> image: Stored file: image.txt\n"), std::string::npos) << io.log;
  EXPECT_EQ(io.log.find("PACKER_COMMA"), std::string::npos) << io.log;
  // -only left the null builder out.
  EXPECT_EQ(io.log.find("vm:"), std::string::npos) << io.log;
  EXPECT_EQ(ReadTextFile(dir / "image.txt"), "hi, there blue\n");

  EXPECT_EQ(io.outputs["artifact_id"], "File");
  EXPECT_EQ(nlohmann::json::parse(io.outputs["artifacts"]),
            nlohmann::json::parse(R"([{"build":"image","builder_id":"packer.file","id":"File"}])"));
  EXPECT_EQ(io.outputs.count("ami_id"), 0u);
  // The file it made is recorded once, although the manifest post-processor repeats it.
  ASSERT_EQ(io.artifacts.size(), 1u);
  EXPECT_EQ(io.artifacts[0].path, "image.txt");
  EXPECT_EQ(io.artifacts[0].size, 15u);
  EXPECT_EQ(io.artifacts[0].sha256, Sha256Hex("hi, there blue\n"));
}

TEST(PackerRunTest, BothBuildsRunWithoutOnly) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/build.json"})"), io);
  ASSERT_TRUE(status) << status.error() << "\n" << io.log;
  EXPECT_NE(io.log.find("    vm: greeting=hello, color=grey\n"), std::string::npos) << io.log;
  auto list = nlohmann::json::parse(io.outputs["artifacts"]);
  ASSERT_EQ(list.size(), 2u) << list.dump();
  std::set<std::string> ids = {list[0]["id"].get<std::string>(), list[1]["id"].get<std::string>()};
  EXPECT_EQ(ids, (std::set<std::string>{"File", "Null"}));
  // The first build to report (Packer runs them in parallel) gives artifact_id.
  EXPECT_EQ(io.outputs["artifact_id"], list[0]["id"].get<std::string>());
}

TEST(PackerRunTest, HclDirectoryRelativeToTheStepDir) {
  TempDir dir;
  std::filesystem::copy(kData + "/hcl", dir / "packer");
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": "packer", "var_files": ["packer/prod.pkrvars.hcl"],
                 "vars": {"target": "out/hcl.txt"}, "only": ["file.image"]})"),
                          io);
  ASSERT_TRUE(status) << status.error() << "\n" << io.log;
  EXPECT_NE(io.log.find("image says from the var file"), std::string::npos) << io.log;
  EXPECT_EQ(ReadTextFile(dir / "out/hcl.txt"), "from the var file\n");
  EXPECT_EQ(io.outputs["artifact_id"], "File");
  ASSERT_EQ(io.artifacts.size(), 1u);
  EXPECT_EQ(io.artifacts[0].path, "out/hcl.txt");
}

// A step with `dir:`: paths are looked up in the dir, then in the workspace.
class SubdirStepIo : public FakeStepIo {
 public:
  SubdirStepIo(const std::string& workspace, std::string dir)
      : FakeStepIo(workspace), subdir_(std::move(dir)) {}
  const std::string& dir() const override { return subdir_; }

 private:
  std::string subdir_;
};

TEST(PackerRunTest, PathsFromTheWorkspaceWhenNotInTheStepDir) {
  TempDir workspace;
  std::filesystem::copy(kData + "/hcl", workspace / "packer");
  std::filesystem::create_directories(workspace / "sub");
  SubdirStepIo io(workspace.path(), workspace / "sub");
  Status status = Execute(Config(R"({"template": "packer", "var_files": ["packer/prod.pkrvars.hcl"],
                 "only": ["file.image"]})"),
                          io);
  ASSERT_TRUE(status) << status.error() << "\n" << io.log;
  // Packer ran in the step's dir.
  EXPECT_EQ(ReadTextFile(workspace / "sub/hcl-image.txt"), "from the var file\n");
  ASSERT_EQ(io.artifacts.size(), 1u);
  EXPECT_EQ(io.artifacts[0].path, "sub/hcl-image.txt");

  SubdirStepIo missing(workspace.path(), workspace / "sub");
  status = Execute(Config(R"({"template": "nope"})"), missing);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error(), "packer.template 'nope' does not exist (looked in " +
                                (workspace / "sub") + " and " + workspace.path() + ")");
}

TEST(PackerRunTest, PackerMissing) {
  TempDir dir;
  FakeStepIo io(dir.path());
  io.env_["PACKER"] = "/nonexistent";
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/build.json"})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer not found"), std::string::npos) << status.error();
  EXPECT_NE(status.error().find("apt-get install packer"), std::string::npos) << status.error();

  FakeStepIo no_path(dir.path());
  no_path.env_["PATH"] = dir.path();
  status = Execute(Config(R"({"template": ")" + kData + R"(/build.json"})"), no_path);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer not found"), std::string::npos) << status.error();
}

TEST(PackerRunTest, TemplateOrVarFileMissing) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": "packer/nope.pkr.hcl"})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer.template 'packer/nope.pkr.hcl' does not exist"),
            std::string::npos)
      << status.error();
  status = Execute(
      Config(R"({"template": ")" + kData + R"(/build.json", "var_files": ["nope.json"]})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer.var_files 'nope.json' does not exist"), std::string::npos)
      << status.error();
  EXPECT_EQ(io.log, "");  // Packer never ran
}

TEST(PackerRunTest, TemplateThatDoesNotParse) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/broken.json"})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer build failed (exit status 1): Failed to parse template"),
            std::string::npos)
      << status.error();
  // Packer's own lines, unescaped, with the caret under the column.
  EXPECT_NE(io.log.find("Failed to parse template: Error parsing JSON: invalid character"),
            std::string::npos)
      << io.log;
  EXPECT_NE(io.log.find("\nAt line 2, column 33"), std::string::npos) << io.log;
  EXPECT_TRUE(io.outputs.empty());

  WriteTextFile(dir / "bad.pkr.hcl", "source \"null\" \"x\" {\n");
  FakeStepIo hcl(dir.path());
  status = Execute(Config(R"({"template": "bad.pkr.hcl"})"), hcl);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("Error: "), std::string::npos) << status.error();
  EXPECT_NE(hcl.log.find("on bad.pkr.hcl line"), std::string::npos) << hcl.log;
}

TEST(PackerRunTest, FailedBuild) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/fail.json"})"), io);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error(),
            "packer build failed (exit status 1): --> null: Script exited with non-zero exit "
            "status: 1.Allowed exit codes are: [0]");
  EXPECT_NE(io.log.find("==> null: disk full, giving up\n"), std::string::npos) << io.log;
  EXPECT_TRUE(io.outputs.empty());
}

TEST(PackerRunTest, BuildWithoutAnArtifactId) {
  TempDir dir;
  FakeStepIo io(dir.path());
  // An artifice post-processor that drops the builder's artifact leaves only an empty id.
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/no_artifact.json"})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer build produced no artifact id"), std::string::npos)
      << status.error();
  EXPECT_TRUE(io.outputs.empty());

  // An `only` that matches nothing: Packer builds nothing and exits 0.
  FakeStepIo nothing(dir.path());
  status = Execute(Config(R"({"template": ")" + kData + R"(/hcl", "only": ["amazon-ebs.nope"]})"),
                   nothing);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("packer build produced no artifact id"), std::string::npos)
      << status.error();
  EXPECT_NE(nothing.log.find("Builds finished but no artifacts were created."), std::string::npos)
      << nothing.log;
  EXPECT_TRUE(nothing.outputs.empty());
}

TEST(PackerRunTest, RegionWithoutAmiFailsAfterAGoodBuild) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": ")" + kData +
                                 R"(/build.json", "only": ["vm"], "region": "eu-west-1"})"),
                          io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("no AMI"), std::string::npos) << status.error();
  EXPECT_EQ(io.outputs.count("ami_id"), 0u);
}

TEST(PackerRunTest, LeftoverProcessIsLeftToTheRunner) {
  TempDir dir;
  WriteTextFile(dir / "leftover.json", R"({
    "builders": [{"type": "null", "communicator": "none"}],
    "provisioners": [{"type": "shell-local", "inline": [
      "sleep 30 >/dev/null 2>&1 & echo $! > leftover.pid"]}]})");
  FakeStepIo io(dir.path());
  auto started = std::chrono::steady_clock::now();
  Status status = Execute(Config(R"({"template": "leftover.json"})"), io);
  auto took = std::chrono::steady_clock::now() - started;
  // The leftover became our child (we were its subreaper): end it as the runner would.
  pid_t leftover = std::atoi(ReadTextFile(dir / "leftover.pid").c_str());
  ASSERT_GT(leftover, 0);
  kill(leftover, SIGKILL);
  waitpid(leftover, nullptr, 0);

  ASSERT_TRUE(status) << status.error() << "\n" << io.log;
  EXPECT_NE(io.log.find("Packer left processes running"), std::string::npos) << io.log;
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST(PackerRunTest, CancelledBeforeStartRunsNothing) {
  TempDir dir;
  FakeStepIo io(dir.path());
  io.cancel = true;
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/build.json"})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("cancelled"), std::string::npos) << status.error();
  EXPECT_FALSE(std::filesystem::exists(dir / "image.txt"));
}

// --- Signals --------------------------------------------------------------------------------

bool WaitForFile(const std::string& path, std::chrono::seconds limit) {
  auto give_up = std::chrono::steady_clock::now() + limit;
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Waits for `pid` to exit; SIGKILLs its group and fails the test past `limit`.
int WaitForExit(pid_t pid, std::chrono::seconds limit) {
  auto give_up = std::chrono::steady_clock::now() + limit;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (std::chrono::steady_clock::now() > give_up) {
      ADD_FAILURE() << "the step process did not exit in time";
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

volatile sig_atomic_t g_previous_handler_ran = 0;

bool GroupGone(pid_t pgid) { return kill(-pgid, 0) != 0 && errno == ESRCH; }

// As the runner runs a built-in step: a child process in its own process group, which gets
// the signal as a group. The provisioner traps it and takes 2 s to clean up. With SIGINT the
// process has a handler of its own, with SIGTERM the default disposition.
void InterruptedBakeCleansUp(int sig) {
  TempDir dir;
  std::string marker = dir / "marker";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);
    if (sig == SIGINT) {
      // As the step entry point might: a handler that records the cancellation.
      struct sigaction action {};
      action.sa_handler = [](int) { g_previous_handler_ran = 1; };
      sigemptyset(&action.sa_mask);
      sigaction(SIGINT, &action, nullptr);
    }
    FakeStepIo io(dir.path());
    Status status = Execute(Config(R"({"template": ")" + kData +
                                   R"(/trap.json", "vars": {"marker": ")" + marker + R"("}})"),
                            io);
    WriteTextFile(dir / "result", status ? std::string("ok") : status.error());
    WriteTextFile(dir / "log", io.log);
    WriteTextFile(dir / "previous_handler_ran", g_previous_handler_ran ? "yes" : "no");
    _exit(0);
  }
  setpgid(pid, pid);  // no race with the child's own call: either one makes the group
  ASSERT_TRUE(WaitForFile(marker + ".started", std::chrono::seconds(30)));
  ASSERT_EQ(kill(-pid, sig), 0);
  int status = WaitForExit(pid, std::chrono::seconds(60));
  ASSERT_TRUE(WIFEXITED(status)) << "the step process died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);

  // The cleanup finished before the step returned, and nothing of the group is left.
  EXPECT_TRUE(std::filesystem::exists(marker + ".cleaned")) << ReadTextFile(dir / "log");
  EXPECT_TRUE(GroupGone(pid));
  std::string result = ReadTextFile(dir / "result");
  EXPECT_NE(result.find(std::string("cancelled by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM")),
            std::string::npos)
      << result;
  // Packer's own words here depend on whether the provisioner or the cancel is reported
  // first; the runner's own line is what the user can rely on.
  std::string log = ReadTextFile(dir / "log");
  // A handler the process had before learns of the signal once the step returns; at the
  // default disposition the signal is not raised again (the process would die of it).
  EXPECT_EQ(ReadTextFile(dir / "previous_handler_ran"), sig == SIGINT ? "yes" : "no");
  EXPECT_NE(log.find("waiting for it to clean up"), std::string::npos) << log;
}

TEST(PackerSignalTest, SigtermWaitsForTheProvisionersCleanup) { InterruptedBakeCleansUp(SIGTERM); }

TEST(PackerSignalTest, SigintWaitsForTheProvisionersCleanup) { InterruptedBakeCleansUp(SIGINT); }

// --- The example pipelines' templates -------------------------------------------------------

// `packer validate` of a template, offline.
int PackerValidate(const std::vector<std::string>& args, std::string* output) {
  std::string command = "cd '" + kPipelines +
                        "' && env -i PATH=/usr/bin:/bin HOME=/tmp "
                        "CHECKPOINT_DISABLE=1 packer validate";
  for (const auto& arg : args) command += " '" + arg + "'";
  command += " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output->append(buffer, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PackerTemplatesTest, AwsAmiTemplateValidatesOffline) {
  TempDir dir;
  WriteTextFile(dir / "orders.zip", "PK\x05\x06" + std::string(18, '\0'));
  std::string output;
  EXPECT_EQ(PackerValidate({"-var", "app_zip=" + (dir / "orders.zip"), "-var",
                            "build_id=orders-main-7", "packer/aws-ami.pkr.hcl"},
                           &output),
            0)
      << output;

  // Two regions: the AMI is made in one and copied to the other.
  std::string text = ReadTextFile(kPipelines + "/packer/aws-ami.pkr.hcl");
  EXPECT_NE(text.find("source \"amazon-ebs\""), std::string::npos);
  EXPECT_NE(text.find("ami_regions"), std::string::npos);

  // And Packer does check it: the revision must exist.
  output.clear();
  EXPECT_NE(PackerValidate({"-var", "app_zip=" + (dir / "missing.zip"), "packer/aws-ami.pkr.hcl"},
                           &output),
            0);
  EXPECT_NE(output.find("missing.zip"), std::string::npos) << output;
}

TEST(PackerTemplatesTest, AwsAmiPipelineUsesTheTemplate) {
  std::string text = ReadTextFile(kPipelines + "/aws-ami.yml");
  EXPECT_NE(text.find("template: pipelines/packer/aws-ami.pkr.hcl"), std::string::npos);
  EXPECT_NE(text.find("steps.bake.outputs.ami_id"), std::string::npos);
  EXPECT_NE(text.find("amis: ${{ steps.bake.outputs.artifact_id }}"), std::string::npos);
}

TEST(PackerTemplatesTest, ExampleBakeRunsOffline) {
  TempDir dir;
  std::filesystem::create_directories(dir / "pipelines");
  std::filesystem::copy(kPipelines + "/packer", dir / "pipelines/packer");
  WriteTextFile(dir / "dist/orders.zip", "PK\x05\x06" + std::string(18, '\0'));
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": "pipelines/packer/local-image.pkr.hcl",
      "vars": {"app_zip": "dist/orders.zip", "app_sha256": "abc", "build_id": "orders-main-7",
               "image": "dist/image.txt"}})"),
                          io);
  ASSERT_TRUE(status) << status.error() << "\n" << io.log;
  EXPECT_NE(io.log.find("baking orders-main-7 from dist/orders.zip (22 bytes)"), std::string::npos)
      << io.log;
  EXPECT_EQ(io.outputs["artifact_id"], "File");
  EXPECT_EQ(ReadTextFile(dir / "dist/image.txt"),
            "image orders-main-7\nrevision dist/orders.zip\nsha256 abc\n");
  ASSERT_EQ(io.artifacts.size(), 1u);
  EXPECT_EQ(io.artifacts[0].path, "dist/image.txt");

  FakeStepIo missing(dir.path());
  status = Execute(Config(R"({"template": "pipelines/packer/local-image.pkr.hcl",
      "vars": {"app_zip": "dist/nope.zip"}})"),
                   missing);
  ASSERT_FALSE(status);
  EXPECT_NE(missing.log.find("missing revision dist/nope.zip"), std::string::npos) << missing.log;
}

}  // namespace
}  // namespace runner

namespace runner {
namespace {

// --- Hardening (issue 9) -------------------------------------------------------------------

TEST(PackerHardeningTest, VarsNeverReachTheCommandLine) {
  // A $PACKER that records the argv it was started with (what `ps` shows), and the mode of the
  // var files it was given, then runs the real Packer.
  TempDir dir;
  WriteTextFile(dir / "packer-spy",
                "#!/bin/sh\n"
                "printf '%s\\n' \"$@\" > \"$SPY_DIR/argv.txt\"\n"
                "for a in \"$@\"; do case \"$a\" in */runner-packer-*) "
                "stat -c '%a' \"$a\" \"${a%/*}\" >> \"$SPY_DIR/modes.txt\";; esac; done\n"
                "env | grep '^PKR_VAR_' | cut -d= -f1 | sort >> \"$SPY_DIR/env.txt\"\n"
                "exec packer \"$@\"\n");
  ::chmod((dir / "packer-spy").c_str(), 0755);
  std::filesystem::copy(kData + "/hcl", dir / "hcl");
  const std::string kSecret = "s3cr3t-Value,with=signs";
  struct Case {
    std::string config;
    std::string made;  // the file whose content shows the var reached the build
    std::string content;
  };
  std::vector<Case> cases = {
      // Legacy JSON: a private var file, after the user's (a var wins over a var file).
      {R"({"template": ")" + kData + R"(/build.json", "only": ["image"], "var_files": [")" + kData +
           R"(/vars.json"], "vars": {"greeting": ")" + kSecret + R"(", "color": "red"}})",
       "image.txt", kSecret + " red\n"},
      // HCL2: the environment.
      {R"({"template": "hcl", "only": ["file.image"], "vars": {"greeting": ")" + kSecret +
           R"(", "target": "hcl.txt"}})",
       "hcl.txt", kSecret + "\n"},
  };
  for (const Case& c : cases) {
    FakeStepIo io(dir.path());
    io.env_["PACKER"] = dir / "packer-spy";
    io.env_["SPY_DIR"] = dir.path();
    std::filesystem::remove(dir / "argv.txt");
    Status status = Execute(Config(c.config), io);
    ASSERT_TRUE(status) << status.error() << "\n" << io.log;
    EXPECT_EQ(ReadTextFile(dir / c.made), c.content);
    std::string argv = ReadTextFile(dir / "argv.txt");
    EXPECT_EQ(argv.find("s3cr3t"), std::string::npos) << argv;
    EXPECT_EQ(argv.find("red"), std::string::npos) << argv;
    // The command line the log shows holds none either (the build itself echoes it).
    EXPECT_EQ(io.log.substr(0, io.log.find('\n')).find("s3cr3t"), std::string::npos) << io.log;
  }
  // The JSON template's var file was private and is gone; the HCL2 run used PKR_VAR_.
  EXPECT_EQ(ReadTextFile(dir / "modes.txt"), "600\n700\n");
  std::string argv = ReadTextFile(dir / "argv.txt");
  EXPECT_EQ(argv.find("runner-packer-"), std::string::npos) << argv;
  EXPECT_NE(ReadTextFile(dir / "env.txt").find("PKR_VAR_greeting\nPKR_VAR_target\n"),
            std::string::npos);
  std::string tmp_left;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp")) {
    if (entry.path().filename().string().starts_with("runner-packer-")) {
      std::string file = entry.path() / "vars.json";
      if (std::filesystem::exists(file) && ReadTextFile(file).find(kSecret) != std::string::npos)
        tmp_left = file;
    }
  }
  EXPECT_EQ(tmp_left, "");
}

TEST(PackerHardeningTest, OutputsDoNotDependOnTheOrderPackerPrintedThem) {
  std::vector<PackerArtifact> printed = {
      MakeArtifact("amazon-ebs.west", 0, "mitchellh.amazonebs", "eu-west-1:ami-0b"),
      MakeArtifact("amazon-ebs.east", 0, "mitchellh.amazonebs", "us-east-1:ami-0e"),
      MakeArtifact("amazon-ebs.both", 0, "mitchellh.amazonebs",
                   "us-east-1:ami-1e,eu-west-1:ami-1b"),
      MakeArtifact("file.a", 1, "packer.post-processor.manifest", "File"),
      MakeArtifact("file.a", 0, "packer.file", "File"),
  };
  auto expected = PackerOutputs(printed, "");
  ASSERT_TRUE(expected) << expected.error();
  Outputs map = ToMap(*expected);
  // Builds sorted by name: amazon-ebs.both first.
  EXPECT_EQ(map["artifact_id"], "us-east-1:ami-1e,eu-west-1:ami-1b");
  EXPECT_EQ(map["ami_id"], "ami-1e");
  EXPECT_EQ(map["ami_eu_west_1"], "ami-1b");
  EXPECT_EQ(nlohmann::json::parse(map["artifacts"])[3]["builder_id"], "packer.file");
  std::sort(printed.begin(), printed.end(),
            [](const PackerArtifact& a, const PackerArtifact& b) { return a.id < b.id; });
  do {
    auto outputs = PackerOutputs(printed, "");
    ASSERT_TRUE(outputs);
    EXPECT_EQ(*outputs, *expected);
    auto west = PackerOutputs(printed, "eu-west-1");
    ASSERT_TRUE(west);
    EXPECT_EQ(ToMap(*west)["ami_id"], "ami-1b");
  } while (std::next_permutation(
      printed.begin(), printed.end(),
      [](const PackerArtifact& a, const PackerArtifact& b) { return a.id < b.id; }));
}

TEST(PackerHardeningTest, ErrorLinesReachTheLogAndTemplateRelativePathsGetAHint) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = Execute(Config(R"({"template": ")" + kData + R"(/relative/relative.json"})"), io);
  ASSERT_FALSE(status);
  EXPECT_NE(io.log.find("stat scripts/hello.sh: no such file or"), std::string::npos) << io.log;
  EXPECT_NE(io.log.find("runner: hint: 'scripts/hello.sh' is not in " + dir.path()),
            std::string::npos)
      << io.log;
  EXPECT_NE(io.log.find("{{template_dir}}/scripts/hello.sh"), std::string::npos) << io.log;

  // The failing build's own `error` line reaches the log.
  FakeStepIo failed(dir.path());
  ASSERT_FALSE(Execute(Config(R"({"template": ")" + kData + R"(/fail.json"})"), failed));
  EXPECT_NE(failed.log.find("null: error: Script exited with non-zero exit status: 1"),
            std::string::npos)
      << failed.log;
  EXPECT_EQ(failed.log.find("runner: hint:"), std::string::npos) << failed.log;

  // No hint for a path missing everywhere, an absolute one, or one that is where Packer runs.
  std::vector<std::string> errors = {
      "* Bad script 'nope.sh': stat nope.sh: no such file or directory",
      "open /abs/x: no such file or directory"};
  EXPECT_FALSE(WorkingDirectoryHint(errors, dir.path(), kData + "/relative"));
  EXPECT_FALSE(WorkingDirectoryHint({"stat scripts/hello.sh: no such file or directory"},
                                    kData + "/relative", kData + "/relative"));
  EXPECT_TRUE(WorkingDirectoryHint({"open scripts/hello.sh: no such file or directory"}, dir.path(),
                                   kData + "/relative"));
}

TEST(PackerHardeningTest, OutputParserIsLinearAndBounded) {
  // 64 MiB without a newline, in 64 KiB reads: the old parser rescanned the pending line on
  // every read (quadratic) and kept it whole.
  const size_t kTotal = size_t{64} << 20;
  const std::string chunk(size_t{64} << 10, 'x');
  for (const std::string& head : {std::string(), std::string("1,,ui,say,")}) {
    PackerOutputParser parser;
    size_t logged = 0;
    size_t largest_pending = 0;
    size_t fed = 0;
    bool prefix_logged_as_text = false;
    std::string first = head + chunk.substr(head.size());
    for (; fed < kTotal; fed += chunk.size()) {
      std::string log = parser.Feed(fed == 0 ? first : chunk);
      if (fed == 0 || (logged == 0 && !log.empty())) {
        prefix_logged_as_text = log.empty() || log.starts_with(head);
      }
      logged += log.size();
      largest_pending = std::max(largest_pending, fed + chunk.size() - logged);
    }
    std::string rest = parser.Feed("tail\n1,,ui,say,after\n");
    logged += rest.size();
    EXPECT_TRUE(rest.ends_with("tail\nafter\n")) << rest.substr(0, 40);
    EXPECT_EQ(logged, kTotal + std::string("tail\nafter\n").size());
    EXPECT_LE(largest_pending, LineSplitter::kMaxLineBytes);
    EXPECT_TRUE(prefix_logged_as_text);
    EXPECT_TRUE(parser.artifacts().empty());
  }
  // A whole overlong line in one read is text too; lines around it are parsed.
  PackerOutputParser parser;
  std::string big = "1,b,artifact,0,id," + std::string(LineSplitter::kMaxLineBytes, 'i');
  std::string log = parser.Feed("1,,ui,say,before\n" + big + "\n1,b,artifact,0,id,ok\n");
  EXPECT_EQ(log, "before\n" + big + "\n");
  ASSERT_EQ(parser.artifacts().size(), 1u);
  EXPECT_EQ(parser.artifacts()[0].id, "ok");
  // stderr's lines are bounded the same way (through the one LineSplitter).
  LineSplitter lines;
  size_t parts = 0;
  lines.Feed(std::string(3 * LineSplitter::kMaxLineBytes + 5, 'e') + "\nx",
             [&](std::string_view, LineSplitter::Piece piece) {
               if (piece == LineSplitter::Piece::kPart) ++parts;
             });
  EXPECT_EQ(parts, 3u);
}

}  // namespace
}  // namespace runner
