#include "steps/params.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "runner/sha256.h"
#include "tests/config_from_yaml.h"
#include "tests/fake_step_io.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::ordered_json;
using testing::ReadTextFile;
using testing::TempDir;
using testing::WriteTextFile;

const std::string kSourceDir = RUNNER_SOURCE_DIR;
// Relative: params reads only files inside the workspace, so RunParams copies the test data
// into the step's directory as `data/` for a configuration that names it.
const std::string kDataDir = "data";
const std::string kCfnDir = kSourceDir + "/tests/data/cfn";
const std::string kOrdersTemplate = kSourceDir + "/pipelines/orders/cfn/template.yaml";

// Validates the `params:` of a YAML snippet; the formatted diagnostics ("" when clean).
std::string Validate(const std::string& yaml) {
  Diagnostics diags("pipeline.yml", yaml);
  ParamsKind().Check(testing::ConfigFromYaml(yaml, "params"), diags);
  return diags.Format();
}

Status RunParams(const std::string& config, FakeStepIo& io) {
  if (config.find("\"" + kDataDir + "/") != std::string::npos) {
    std::filesystem::copy(
        kSourceDir + "/tests/data/params", io.dir() + "/" + kDataDir,
        std::filesystem::copy_options::skip_existing | std::filesystem::copy_options::recursive);
  }
  return ParamsKind().Execute(testing::ExpandedConfig(config), io);
}

// Executes the configuration `yaml` with the first entry of its field number `field` set to
// `value`, as an expression's value (which no YAML text could hold) would be.
Status ExecuteWithValue(const std::string& yaml, std::size_t field, const std::string& value,
                        FakeStepIo& io) {
  ConfigNode config = testing::ConfigFromYaml(yaml);
  config.fields[field].second.fields[0].second.scalar.text = value;
  testing::MarkExpanded(config);
  return ParamsKind().Execute(config, io);
}

// ---------------------------------------------------------------------------------------------
// Output formats, byte for byte.

TEST(ParamsTest, CloudFormationFormatIsExact) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "dist/params.json",
                      "values": {"AmiId": "ami-0123456789abcdef0", "Version": "orders-main-7"}})",
                        io));
  EXPECT_EQ(ReadTextFile(dir / "dist/params.json"),
            "[\n"
            "  {\n"
            "    \"ParameterKey\": \"AmiId\",\n"
            "    \"ParameterValue\": \"ami-0123456789abcdef0\"\n"
            "  },\n"
            "  {\n"
            "    \"ParameterKey\": \"Version\",\n"
            "    \"ParameterValue\": \"orders-main-7\"\n"
            "  }\n"
            "]\n");
}

TEST(ParamsTest, CodePipelineFormatIsExact) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "format": "codepipeline",
                      "values": {"AmiId": "ami-0123456789abcdef0", "Version": "orders-main-7"},
                      "tags": {"team": "orders", "cost-center": "42"}})",
                        io));
  EXPECT_EQ(ReadTextFile(dir / "p.json"),
            "{\n"
            "  \"Parameters\": {\n"
            "    \"AmiId\": \"ami-0123456789abcdef0\",\n"
            "    \"Version\": \"orders-main-7\"\n"
            "  },\n"
            "  \"Tags\": {\n"
            "    \"team\": \"orders\",\n"
            "    \"cost-center\": \"42\"\n"
            "  }\n"
            "}\n");
}

TEST(ParamsTest, CodePipelineWithoutTagsStillHasTags) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(
      RunParams(R"({"dest": "p.json", "format": "codepipeline", "values": {"A": "1"}})", io));
  EXPECT_EQ(ReadTextFile(dir / "p.json"),
            "{\n  \"Parameters\": {\n    \"A\": \"1\"\n  },\n  \"Tags\": {}\n}\n");
}

TEST(ParamsTest, PlainFormatIsExact) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "format": "plain",
                      "values": {"Version": "orders-main-7", "AmiId": "ami-0123456789abcdef0",
                                 "Motto": "quote \" and ü"}})",
                        io));
  EXPECT_EQ(ReadTextFile(dir / "p.json"),
            "{\n"
            "  \"Version\": \"orders-main-7\",\n"
            "  \"AmiId\": \"ami-0123456789abcdef0\",\n"
            "  \"Motto\": \"quote \\\" and ü\"\n"
            "}\n");
}

TEST(ParamsTest, OutputsAndArtifact) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "dist/params.json", "values": {"AmiId": "ami-1"}})", io));
  std::string written = ReadTextFile(dir / "dist/params.json");
  EXPECT_EQ(io.outputs["path"], "dist/params.json");
  EXPECT_EQ(io.outputs["sha256"], Sha256Hex(written));
  ASSERT_EQ(io.artifacts.size(), 1u);
  EXPECT_EQ(io.artifacts[0].path, "dist/params.json");
  EXPECT_EQ(io.artifacts[0].size, written.size());
  EXPECT_EQ(io.artifacts[0].sha256, Sha256Hex(written));
  EXPECT_THAT(io.log, HasSubstr("wrote dist/params.json (cloudformation, 1 parameters)"));
}

TEST(ParamsTest, SameInputsGiveSameBytes) {
  TempDir dir;
  FakeStepIo io(dir.path());
  std::string config = R"({"dest": "a.json", "base": ")" + kDataDir +
                       R"(/base.plain.json", "values": {"Version": "v1"}})";
  ASSERT_TRUE(RunParams(config, io));
  std::string first = io.outputs["sha256"];
  ASSERT_TRUE(RunParams(config, io));
  EXPECT_EQ(io.outputs["sha256"], first);
}

// ---------------------------------------------------------------------------------------------
// Base files.

class BaseFormatTest : public ::testing::TestWithParam<std::string> {};

// A base in any of the three formats gives the same result, in each output format.
TEST_P(BaseFormatTest, MergesBaseThenValues) {
  TempDir dir;
  FakeStepIo io(dir.path());
  std::string base = kDataDir + "/base." + GetParam() + ".json";
  ASSERT_TRUE(RunParams(R"({"dest": "cfn.json", "base": ")" + base +
                            R"(", "values": {"AmiId": "ami-0123456789abcdef0", "Version": "v7"}})",
                        io));
  // The overridden AmiId keeps its place from the base; the new Version comes last.
  EXPECT_EQ(Json::parse(ReadTextFile(dir / "cfn.json")), Json::parse(R"([
              {"ParameterKey": "Environment", "ParameterValue": "staging"},
              {"ParameterKey": "InstanceType", "ParameterValue": "t3.small"},
              {"ParameterKey": "AmiId", "ParameterValue": "ami-0123456789abcdef0"},
              {"ParameterKey": "Version", "ParameterValue": "v7"}])"));

  ASSERT_TRUE(RunParams(R"({"dest": "plain.json", "format": "plain", "base": ")" + base +
                            R"(", "values": {"InstanceType": "m6i.large"}})",
                        io));
  EXPECT_EQ(ReadTextFile(dir / "plain.json"),
            "{\n  \"Environment\": \"staging\",\n  \"InstanceType\": \"m6i.large\",\n"
            "  \"AmiId\": \"ami-00000000000000000\"\n}\n");

  ASSERT_TRUE(RunParams(R"({"dest": "cp.json", "format": "codepipeline", "base": ")" + base +
                            R"(", "tags": {"team": "orders"}})",
                        io));
  EXPECT_EQ(Json::parse(ReadTextFile(dir / "cp.json")),
            Json::parse(R"({"Parameters": {"Environment": "staging", "InstanceType": "t3.small",
                                           "AmiId": "ami-00000000000000000"},
                            "Tags": {"team": "orders"}})"));
}

INSTANTIATE_TEST_SUITE_P(Formats, BaseFormatTest,
                         ::testing::Values("cloudformation", "codepipeline", "plain"));

TEST(ParamsTest, BaseAloneIsEnough) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "format": "plain", "base": ")" + kDataDir +
                            R"(/base.cloudformation.json"})",
                        io));
  EXPECT_EQ(Json::parse(ReadTextFile(dir / "p.json")),
            Json::parse(R"({"Environment": "staging", "InstanceType": "t3.small",
                            "AmiId": "ami-00000000000000000"})"));
}

TEST(ParamsTest, BaseRelativeToStepDir) {
  TempDir dir;
  WriteTextFile(dir / "cfn/base.json", R"({"A": "1"})");
  FakeStepIo io(dir.path());
  ASSERT_TRUE(
      RunParams(R"({"dest": "out/p.json", "format": "plain", "base": "cfn/base.json"})", io));
  EXPECT_EQ(ReadTextFile(dir / "out/p.json"), "{\n  \"A\": \"1\"\n}\n");
}

TEST(ParamsTest, CodePipelineBaseKeepsTagsAndStackPolicy) {
  TempDir dir;
  WriteTextFile(dir / "base.json", R"({"Parameters": {"A": "1"}, "Tags": {"team": "x", "env": "s"},
    "StackPolicy": {"Statement": [{"Effect": "Allow", "Action": "Update:*", "Principal": "*",
                                   "Resource": "*"}]}})");
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "format": "codepipeline", "base": "base.json",
                      "tags": {"team": "orders"}})",
                        io));
  EXPECT_EQ(Json::parse(ReadTextFile(dir / "p.json")),
            Json::parse(R"({"Parameters": {"A": "1"}, "Tags": {"team": "orders", "env": "s"},
              "StackPolicy": {"Statement": [{"Effect": "Allow", "Action": "Update:*",
                                             "Principal": "*", "Resource": "*"}]}})"));
}

TEST(ParamsTest, BaseTagsNeedCodePipeline) {
  TempDir dir;
  WriteTextFile(dir / "base.json", R"({"Parameters": {"A": "1"}, "Tags": {"team": "x"}})");
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "base": "base.json"})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(),
              AllOf(HasSubstr("'base.json' has Tags"), HasSubstr("only format codepipeline")));
}

TEST(ParamsTest, MissingBaseFileNamesIt) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "base": "cfn/nope.json"})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("cannot read 'cfn/nope.json'"));
  EXPECT_FALSE(std::filesystem::exists(dir / "p.json"));
}

TEST(ParamsTest, BadJsonBaseHasLineAndColumn) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "base": ")" + kDataDir + R"(/bad.json"})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), AllOf(HasSubstr("/bad.json:3:45: invalid JSON: "),
                                    HasSubstr("syntax error while parsing object")));
}

TEST(ParamsTest, ParseParamsFileDetectsFormats) {
  auto cfn = ParseParamsFile(R"([{"ParameterKey": "A", "ParameterValue": "1"}])", "f");
  ASSERT_TRUE(cfn) << cfn.error();
  EXPECT_EQ(cfn->format, ParamsFormat::kCloudFormation);
  auto cp = ParseParamsFile(R"({"Parameters": {"A": "1"}})", "f");
  ASSERT_TRUE(cp) << cp.error();
  EXPECT_EQ(cp->format, ParamsFormat::kCodePipeline);
  // A plain parameter may be called "Parameters": only an object there means codepipeline.
  auto plain = ParseParamsFile(R"({"Parameters": "1", "B": "2"})", "f");
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_EQ(plain->format, ParamsFormat::kPlain);
  EXPECT_EQ(plain->parameters.entries().size(), 2u);
  auto empty = ParseParamsFile("[]", "f");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->parameters.empty());
}

TEST(ParamsTest, UnrecognizedBaseShapes) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {R"("just a string")", "base.json: not a parameters file: expected an array"},
      {R"({"MinSize": 2})",
       "base.json: parameter 'MinSize' must be a string, got a number "
       "(write \"2\")"},
      {R"([["AmiId", "ami-1"]])", "base.json: entry 1 must be an object"},
      {R"([{"ParameterKey": "A", "ParameterValeu": "1"}])",
       "unknown key 'ParameterValeu' (did you mean 'ParameterValue'?)"},
      {R"([{"ParameterKey": "A", "UsePreviousValue": true}])", "UsePreviousValue is not supported"},
      {R"([{"ParameterValue": "1"}])", "base.json: entry 1: 'ParameterKey' must be a string"},
      {R"([{"ParameterKey": "A", "ParameterValue": "1"},
           {"ParameterKey": "A", "ParameterValue": "2"}])",
       "entry 2: parameter 'A' appears more than once"},
      {R"({"Parameters": {"A": "1"}, "Tag": {}})",
       "unknown key 'Tag' in a codepipeline template configuration (did you mean 'Tags'?)"},
      {R"({"Parameters": {"A": "1"}, "Tags": ["x"]})", "'Tags' must be an object"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseParamsFile(c.text, "base.json");
    ASSERT_FALSE(parsed) << c.text;
    EXPECT_THAT(parsed.error(), HasSubstr(c.error)) << c.text;
  }
}

TEST(ParamsTest, ValuesOverrideBase) {
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "format": "plain", "base": ")" + kDataDir +
                            R"(/base.codepipeline.json", "values": {"Environment": "production"}})",
                        io));
  EXPECT_EQ(ReadTextFile(dir / "p.json"),
            "{\n  \"Environment\": \"production\",\n  \"InstanceType\": \"t3.small\",\n"
            "  \"AmiId\": \"ami-00000000000000000\"\n}\n");
}

// ---------------------------------------------------------------------------------------------
// Empty values.

TEST(ParamsTest, EmptyLiteralValueIsAValidationError) {
  EXPECT_THAT(Validate("params:\n"
                       "  dest: p.json\n"
                       "  values:\n"
                       "    AmiId: \"\"\n"
                       "    Version: v1\n"),
              HasSubstr("pipeline.yml:4:12: error: 'params.values.AmiId' is empty"));
  EXPECT_THAT(Validate("params:\n"
                       "  dest: p.json\n"
                       "  values: {AmiId: , Version: v1}\n"),
              HasSubstr("'params.values.AmiId' is empty"));
}

TEST(ParamsTest, EmptyValueAfterExpansionFailsAndWritesNothing) {
  TempDir dir;
  FakeStepIo io(dir.path());
  // `AmiId: "${{ steps.bake.outputs.ami_id }}"` when bake produced no ami_id.
  Status status = RunParams(R"({"dest": "p.json", "values": {"AmiId": "", "Version": "v1"}})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("parameter 'AmiId' is empty"));
  EXPECT_FALSE(std::filesystem::exists(dir / "p.json"));
  EXPECT_TRUE(io.outputs.empty());
  EXPECT_TRUE(io.artifacts.empty());
}

// A value from an earlier step's output in Latin-1 (or any bytes that are not UTF-8) is refused
// by name, without quoting it, before nlohmann's "incomplete UTF-8 string" could be.
TEST(ParamsTest, ValueThatIsNotUtf8FailsByNameAndWritesNothing) {
  for (const char* format : {"cloudformation", "codepipeline", "plain"}) {
    TempDir dir;
    FakeStepIo io(dir.path());
    Status status = ExecuteWithValue(
        fmt::format("dest: p.json\nformat: {}\nvalues: {{DBPassword: x, Name: y}}\n", format), 2,
        "caf\xe9-secret", io);
    ASSERT_FALSE(status) << format;
    EXPECT_THAT(status.error(), HasSubstr("params: parameter 'DBPassword' is not valid UTF-8 "
                                          "text (value not shown)"));
    EXPECT_THAT(status.error(), AllOf(Not(HasSubstr("secret")), Not(HasSubstr("json.exception"))));
    EXPECT_FALSE(std::filesystem::exists(dir / "p.json"));
    EXPECT_TRUE(io.outputs.empty());
  }
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = ExecuteWithValue(
      "dest: p.json\nformat: codepipeline\nvalues: {A: x}\ntags: {team: y}\n", 3, "\xff", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("params: tag 'team' is not valid UTF-8 text"));
}

TEST(ParamsTest, EmptyValueFromBaseFails) {
  TempDir dir;
  WriteTextFile(dir / "base.json", R"([{"ParameterKey": "KeyName", "ParameterValue": ""}])");
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "base": "base.json", "values": {"A": "1"}})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("parameter 'KeyName' is empty"));
}

TEST(ParamsTest, EmptyTagFails) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "format": "codepipeline", "values": {"A": "1"},
              "tags": {"branch": ""}})",
                            io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("tag 'branch' is empty"));
}

TEST(ParamsTest, ParameterNamesMustBeCloudFormationNames) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "values": {"ami-id": "ami-1"}})", io);
  ASSERT_FALSE(status);
  // A run-time configuration error is Check's diagnostic, at the key.
  EXPECT_THAT(status.error(), HasSubstr("pipeline.yml:1:31: error: 'ami-id' in params.values is "
                                        "not a CloudFormation parameter name"));
  // Plain files feed other tools too: any non-empty key goes.
  EXPECT_TRUE(
      RunParams(R"({"dest": "p.json", "format": "plain", "values": {"ami-id": "ami-1"}})", io));
}

// ---------------------------------------------------------------------------------------------
// Templates.

TEST(ParamsTest, ReadsParametersOfYamlTemplateWithShortFormTags) {
  std::string text = ReadTextFile(kOrdersTemplate);
  ASSERT_FALSE(text.empty());
  // The file really uses the short forms this test is about (inline or before a block).
  for (const char* tag :
       {"!Ref", "!Sub", "!GetAtt", "!If", "!Equals", "!Select", "!Split", "!Join", "!FindInMap",
        "!ImportValue", "!Base64", "!GetAZs", "!Condition", "!Not", "!And", "!Or"}) {
    bool used = text.find(std::string(tag) + " ") != std::string::npos ||
                text.find(std::string(tag) + "\n") != std::string::npos;
    EXPECT_TRUE(used) << tag;
  }
  auto declared = ParseTemplateParameters(text, "template.yaml");
  ASSERT_TRUE(declared) << declared.error();
  std::vector<std::string> names;
  for (const auto& parameter : *declared) names.push_back(parameter.name);
  EXPECT_THAT(names,
              ::testing::ElementsAre("AmiId", "Version", "Environment", "InstanceType", "MinSize",
                                     "MaxSize", "MinInstancesInService", "NetworkStackName",
                                     "ArtifactBucket", "KeyName", "AlarmTopicArn"));
  EXPECT_FALSE((*declared)[0].has_default);
  EXPECT_EQ((*declared)[0].allowed_pattern, "ami-[0-9a-f]{8,17}");
  EXPECT_TRUE((*declared)[9].has_default);  // KeyName: Default ""
  EXPECT_THAT((*declared)[3].allowed_values,
              ::testing::ElementsAre("t3.micro", "t3.small", "t3.medium", "m6i.large"));
}

TEST(ParamsTest, TagsInsideParametersDoNotBreakReading) {
  // Tags in odd places: a tagged Default, a tagged key's neighbour, tags on sequences and maps.
  auto declared = ParseTemplateParameters(R"(
Conditions:
  C: !Or [!Equals [!Ref A, x], !Condition D]
Parameters:
  A: {Type: String, Default: !Sub "${AWS::Region}"}
  B:
    Type: CommaDelimitedList
    AllowedValues: !Split [",", "a,b"]
Resources:
  R:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Join ["-", [!GetAtt X.Y, !Select [0, !GetAZs ""]]]
      Other: !Sub
        - "${A}-${B}"
        - B: !Ref B
)",
                                          "t.yaml");
  ASSERT_TRUE(declared) << declared.error();
  ASSERT_EQ(declared->size(), 2u);
  EXPECT_TRUE((*declared)[0].has_default);
  EXPECT_FALSE((*declared)[1].has_default);
}

// yaml-cpp 0.7 rejected a tagged plain scalar that goes on on the next line ("end of map not
// found"); CloudFormation, PyYAML and libyaml read it as one string.
TEST(ParamsTest, TemplateWithATaggedScalarOnTwoLinesIsChecked) {
  const std::string kTemplate =
      "Description:\n"
      "  !Sub ${AWS::StackName} app\n"
      "  continued\n"
      "Parameters:\n"
      "  AmiId: {Type: AWS::EC2::Image::Id}\n"
      "  Env:\n"
      "    Type: String\n"
      "    AllowedValues: [stg, prod]\n"
      "Resources:\n"
      "  T: {Type: AWS::SNS::Topic, Properties: {TopicName: !Sub \"${Env}-topic\"}}\n";
  auto declared = ParseTemplateParameters(kTemplate, "t.yaml");
  ASSERT_TRUE(declared) << declared.error();
  ASSERT_EQ(declared->size(), 2u);
  EXPECT_EQ((*declared)[1].name, "Env");

  TempDir dir;
  WriteTextFile(dir / "t.yaml", kTemplate);
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "template": "t.yaml",
                            "values": {"AmiId": "ami-0123abcd", "Env": "stg"}})",
                        io));
  Status wrong = RunParams(R"({"dest": "q.json", "template": "t.yaml",
                               "values": {"AmiId": "ami-0123abcd", "Env": "dev"}})",
                           io);
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error(), HasSubstr("'Env' is 'dev', not one of the AllowedValues in t.yaml"));
}

TEST(ParamsTest, OrdersTemplateAcceptsThePipelinesValues) {
  TempDir dir;
  // The orders service's cfn/ in a workspace of the test's own (params writes only inside it).
  std::filesystem::copy(kSourceDir + "/pipelines/orders/cfn", dir / "cfn");
  FakeStepIo io(dir.path());
  std::string config = R"({"dest": "params.json",
      "base": "cfn/params.base.json", "template": "cfn/template.yaml",
      "values": {"AmiId": "ami-0123456789abcdef0", "Version": "orders-main-7"}})";
  Status status = RunParams(config, io);
  ASSERT_TRUE(status) << status.error();
  Json written = Json::parse(ReadTextFile(dir / "params.json"));
  ASSERT_TRUE(written.is_array());
  EXPECT_EQ(written.back(), Json::parse(R"({"ParameterKey": "Version",
                                            "ParameterValue": "orders-main-7"})"));
  EXPECT_EQ(io.artifacts.at(0).path, "params.json");
}

TEST(ParamsTest, UnknownParameterHasDidYouMean) {
  TempDir dir;
  // The orders service's cfn/ in a workspace of the test's own (params writes only inside it).
  std::filesystem::copy(kSourceDir + "/pipelines/orders/cfn", dir / "cfn");
  FakeStepIo io(dir.path());
  std::string config = R"({"dest": "params.json",
      "base": "cfn/params.base.json", "template": "cfn/template.yaml",
      "values": {"AmiID": "ami-0123456789abcdef0", "Version": "v1", "Colour": "blue"}})";
  Status status = RunParams(config, io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(),
              AllOf(HasSubstr("'AmiID' is not a parameter of cfn/template.yaml (did you mean "
                              "'AmiId'?)"),
                    HasSubstr("'Colour' is not a parameter of cfn/template.yaml\n"),
                    // AmiId itself then has no value, which create-stack refuses.
                    HasSubstr("parameter 'AmiId' of cfn/template.yaml has no Default and no "
                              "value: create-stack would fail")));
  EXPECT_FALSE(std::filesystem::exists(dir / "params.json"));
}

TEST(ParamsTest, JsonTemplate) {
  TempDir dir;
  FakeStepIo io(dir.path());
  std::string head = R"({"dest": "p.json", "template": ")" + kDataDir + R"(/template.json", )";
  Status ok = RunParams(head + R"("values": {"AmiId": "ami-0123abcd", "Version": "v1",
                                      "DesiredCapacity": "3"}})",
                        io);
  ASSERT_TRUE(ok) << ok.error();
  Status typo = RunParams(head + R"("values": {"AmiId": "ami-0123abcd", "Versoin": "v1"}})", io);
  ASSERT_FALSE(typo);
  EXPECT_THAT(typo.error(), HasSubstr("'Versoin' is not a parameter of " + kDataDir +
                                      "/template.json (did you mean 'Version'?)"));
}

TEST(ParamsTest, AllowedValuesAndPattern) {
  TempDir dir;
  FakeStepIo io(dir.path());
  std::string head = R"({"dest": "p.json", "template": ")" + kDataDir + R"(/template.json", )";
  Status status = RunParams(head + R"("values": {"AmiId": "ami-XYZ", "Version": "v1",
                                           "Environment": "prod", "DesiredCapacity": "4"}})",
                            io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(),
              AllOf(HasSubstr("'AmiId' is 'ami-XYZ', which does not match its AllowedPattern "
                              "'ami-[0-9a-f]{8,17}'"),
                    HasSubstr("'Environment' is 'prod', not one of the AllowedValues in"),
                    HasSubstr(": staging, production"),
                    // JSON numbers in AllowedValues compare as their text.
                    HasSubstr("'DesiredCapacity' is '4', not one of the AllowedValues")));
}

TEST(ParamsTest, MissingRequiredParameterIsAWarningOutsideCloudFormation) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "format": "plain", "template": ")" + kDataDir +
                                R"(/template.json", "values": {"AmiId": "ami-0123abcd"}})",
                            io);
  ASSERT_TRUE(status) << status.error();
  EXPECT_THAT(io.log, HasSubstr("warning: parameter 'Version' of " + kDataDir +
                                "/template.json has no Default and no value"));
}

TEST(ParamsTest, TemplateSyntaxErrorsHaveLineAndColumn) {
  auto json = ParseTemplateParameters("{\n  \"Parameters\": {\n    \"A\": {,}\n  }\n}\n", "t.json");
  ASSERT_FALSE(json);
  EXPECT_THAT(json.error(), HasSubstr("t.json:3:11: invalid JSON: "));
  auto yaml = ParseTemplateParameters("Parameters:\n  A: [unclosed\nResources: {}\n", "t.yaml");
  ASSERT_FALSE(yaml);
  EXPECT_EQ(yaml.error(), "t.yaml:2:6: unclosed '[': no matching ']'");
  // yaml-cpp 0.7 would loop forever on a comma that starts a document: refused before parsing.
  auto comma = ParseTemplateParameters(",Parameters: {}\n", "t.yaml");
  ASSERT_FALSE(comma);
  EXPECT_THAT(comma.error(), HasSubstr("t.yaml:1:1: "));
  auto shape = ParseTemplateParameters("Parameters: [A, B]\n", "t.yaml");
  ASSERT_FALSE(shape);
  EXPECT_THAT(shape.error(), HasSubstr("t.yaml:1:13: 'Parameters' must be a mapping"));
}

TEST(ParamsTest, TemplateWithoutParameters) {
  TempDir dir;
  WriteTextFile(dir / "t.yaml", "Resources:\n  T: {Type: AWS::SNS::Topic}\n");
  FakeStepIo io(dir.path());
  Status status =
      RunParams(R"({"dest": "p.json", "template": "t.yaml", "values": {"A": "1"}})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("'A' is not a parameter of t.yaml, which declares no "
                                        "parameters"));
}

// ---------------------------------------------------------------------------------------------
// Tags.

TEST(ParamsTest, TagsOnlyForCodePipeline) {
  EXPECT_THAT(Validate("params:\n"
                       "  dest: p.json\n"
                       "  values: {A: '1'}\n"
                       "  tags: {team: orders}\n"),
              HasSubstr("pipeline.yml:4:3: error: params.tags: only format codepipeline holds "
                        "tags (this step writes cloudformation)"));
  EXPECT_THAT(Validate("params:\n"
                       "  dest: p.json\n"
                       "  format: plain\n"
                       "  values: {A: '1'}\n"
                       "  tags: {team: orders}\n"),
              HasSubstr("(this step writes plain)"));
  EXPECT_EQ(Validate("params:\n"
                     "  dest: p.json\n"
                     "  format: codepipeline\n"
                     "  values: {A: '1'}\n"
                     "  tags: {team: orders}\n"),
            "");
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "values": {"A": "1"}, "tags": {"t": "x"}})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("only format codepipeline holds tags"));
}

// ---------------------------------------------------------------------------------------------
// Atomic writes.

TEST(ParamsTest, FailedRunLeavesExistingDestUntouched) {
  TempDir dir;
  WriteTextFile(dir / "dist/params.json", "previous build's file\n");
  FakeStepIo io(dir.path());
  ASSERT_FALSE(RunParams(R"({"dest": "dist/params.json", "values": {"AmiId": ""}})", io));
  ASSERT_FALSE(RunParams(R"({"dest": "dist/params.json", "template": ")" + kDataDir +
                             R"(/template.json", "values": {"Nope": "1"}})",
                         io));
  EXPECT_EQ(ReadTextFile(dir / "dist/params.json"), "previous build's file\n");
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "dist")) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(ParamsTest, UnwritableDestFailsWithItsName) {
  TempDir dir;
  WriteTextFile(dir / "blocker", "a file where a directory should be");
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "blocker/params.json", "values": {"A": "1"}})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("cannot write 'blocker/params.json'"));
  EXPECT_EQ(ReadTextFile(dir / "blocker"), "a file where a directory should be");
}

TEST(ParamsTest, ReplacesExistingDest) {
  TempDir dir;
  WriteTextFile(dir / "p.json", "old\n");
  FakeStepIo io(dir.path());
  ASSERT_TRUE(RunParams(R"({"dest": "p.json", "format": "plain", "values": {"A": "1"}})", io));
  EXPECT_EQ(ReadTextFile(dir / "p.json"), "{\n  \"A\": \"1\"\n}\n");
}

// ---------------------------------------------------------------------------------------------
// Validation as written.

TEST(ParamsTest, ValidConfigHasNoDiagnostics) {
  EXPECT_EQ(Validate("params:\n"
                     "  dest: dist/params.json\n"
                     "  format: cloudformation\n"
                     "  base: cfn/params.base.json\n"
                     "  template: cfn/template.yaml\n"
                     "  values: {AmiId: '${{ steps.bake.outputs.ami_id }}', MinSize: 2}\n"),
            "");
  EXPECT_EQ(Validate("params: {dest: p.json, base: b.json}\n"), "");
  // A format known only at run time is checked then.
  EXPECT_EQ(Validate("params: {dest: p.json, format: '${{ vars.format }}', values: {a-b: x},"
                     " tags: {t: x}}\n"),
            "");
}

TEST(ParamsTest, ValidationErrorsPointAtTheirPlace) {
  std::string out = Validate(
      "params:\n"
      "  dset: p.json\n"
      "  format: cloudformaton\n"
      "  valuse: {A: '1'}\n"
      "  base: [a.json]\n");
  EXPECT_THAT(out, HasSubstr("pipeline.yml:2:3: error: unknown key 'dset' in params (did you "
                             "mean 'dest'?)"));
  EXPECT_THAT(out, HasSubstr("pipeline.yml:3:11: error: unknown params.format 'cloudformaton' "
                             "(did you mean 'cloudformation'?)"));
  EXPECT_THAT(out, HasSubstr("pipeline.yml:4:3: error: unknown key 'valuse' in params (did you "
                             "mean 'values'?)"));
  EXPECT_THAT(out, HasSubstr("pipeline.yml:5:9: error: expected a string for 'params.base', got "
                             "a list"));
  EXPECT_THAT(out, HasSubstr("pipeline.yml:2:3: error: params: missing 'dest'"));
}

TEST(ParamsTest, ValidationOfValues) {
  std::string out = Validate(
      "params:\n"
      "  dest: ''\n"
      "  values:\n"
      "    AmiId: [ami-1]\n"
      "    ami-id: x\n");
  EXPECT_THAT(out, HasSubstr("pipeline.yml:2:9: error: 'params.dest' is empty"));
  EXPECT_THAT(out, HasSubstr("pipeline.yml:4:12: error: expected a string for "
                             "'params.values.AmiId', got a list"));
  EXPECT_THAT(out, HasSubstr("pipeline.yml:5:5: error: 'ami-id' in params.values is not a "
                             "CloudFormation parameter name"));
  EXPECT_THAT(Validate("params: {dest: p.json, values: [A]}\n"),
              HasSubstr("pipeline.yml:1:32: error: expected a mapping for 'params.values', got a "
                        "list"));
  EXPECT_THAT(Validate("params: {dest: p.json, values: {}}\n"),
              HasSubstr("pipeline.yml:1:32: error: params.values is empty and there is no "
                        "'base'"));
  EXPECT_EQ(Validate("params: {dest: p.json, base: b.json, values: {}}\n"), "");
  EXPECT_THAT(Validate("params: {dest: p.json}\n"),
              HasSubstr("pipeline.yml:1:9: error: params: give 'values', 'base', or both"));
  EXPECT_THAT(Validate("params: p.json\n"),
              HasSubstr("pipeline.yml:1:9: error: expected a mapping for 'params', got a string"));
}

TEST(ParamsTest, UnknownFormatAtRunTime) {
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status =
      RunParams(R"({"dest": "p.json", "format": "codepipline", "values": {"A": "1"}})", io);
  ASSERT_FALSE(status);
  EXPECT_THAT(status.error(), HasSubstr("pipeline.yml:1:30: error: unknown params.format "
                                        "'codepipline' (did you mean 'codepipeline'?)"));
}

// The diagnostics of Check, without the source lines (as Execute reports them).
std::string CheckMessages(const std::string& yaml) {
  Diagnostics diags("pipeline.yml", "");
  ParamsKind().Check(testing::ConfigFromYaml(yaml), diags);
  return diags.Format();
}

// One Parse serves both: an expression passes Check as written; the same tree with the value it
// expands to fails Execute with Check's message for that value, at the same place.
TEST(ParamsTest, OneParseChecksTheWrittenAndTheExpandedConfig) {
  struct Case {
    std::string written;  // the value at `key` is an expression
    std::string key;
    std::string expanded;  // what it expands to
    std::string literal;   // `written` with that value written in place
  };
  const std::vector<Case> cases = {
      {"dest: p.json\nformat: '${{ vars.format }}'\nvalues: {AmiId: ami-1}\n", "format", "plian",
       "dest: p.json\nformat: plian\nvalues: {AmiId: ami-1}\n"},
      {"dest: '${{ vars.dest }}'\nvalues: {AmiId: ami-1}\n", "dest", "",
       "dest: ''\nvalues: {AmiId: ami-1}\n"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CheckMessages(c.written), "") << c.written;
    ConfigNode config = testing::ConfigFromYaml(c.written);
    for (auto& [key, value] : config.fields) {
      if (key == c.key) value.scalar.text = c.expanded;
    }
    testing::MarkExpanded(config);
    TempDir dir;
    FakeStepIo io(dir.path());
    Status status = ParamsKind().Execute(config, io);
    ASSERT_FALSE(status) << c.written;
    EXPECT_EQ(status.error(), CheckMessages(c.literal));
    EXPECT_THAT(status.error(), HasSubstr("pipeline.yml:")) << status.error();
    EXPECT_TRUE(io.outputs.empty());
  }
  EXPECT_THAT(CheckMessages(cases[0].literal),
              HasSubstr("pipeline.yml:2:9: error: unknown params.format 'plian' (did you mean "
                        "'plain'?)"));
  EXPECT_THAT(CheckMessages(cases[1].literal),
              HasSubstr("pipeline.yml:1:7: error: 'params.dest' is empty"));

  // An empty value from an expression, in `values`.
  const std::string expression =
      "dest: p.json\nvalues: {AmiId: '${{ steps.bake.outputs.ami_id }}'}\n";
  EXPECT_EQ(CheckMessages(expression), "");
  TempDir dir;
  FakeStepIo io(dir.path());
  Status status = ExecuteWithValue(expression, 1, "", io);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error(), CheckMessages("dest: p.json\nvalues: {AmiId: ''}\n"));
  EXPECT_THAT(status.error(),
              HasSubstr("pipeline.yml:2:17: error: 'params.values.AmiId' is empty"));
}

// ---------------------------------------------------------------------------------------------
// The real AWS CLI reads the cloudformation file. Offline: the CLI parses --parameters before
// it sends anything, and with --debug it logs the request it built; the endpoint is a closed
// port on 127.0.0.1, so nothing leaves the machine.

const char* kAws = "/usr/bin/aws";

struct AwsRun {
  int status = -1;
  std::string output;
};

AwsRun RunAwsCreateStack(const TempDir& dir, const std::string& params_file) {
  std::string command =
      "cd '" + dir.path() + "' && env -i PATH=/usr/bin:/bin HOME='" + dir.path() +
      "' AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_DEFAULT_REGION=us-east-1 "
      "AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard AWS_EC2_METADATA_DISABLED=true "
      "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= "
      "timeout 120 " +
      std::string(kAws) +
      " cloudformation create-stack --stack-name orders-test --template-body file://" +
      kOrdersTemplate + " --parameters file://" + params_file +
      " --endpoint-url http://127.0.0.1:9 --cli-connect-timeout 2 --debug 2>&1";
  AwsRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  std::array<char, 4096> buffer;
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    run.output.append(buffer.data(), n);
  run.status = ::pclose(pipe);
  return run;
}

TEST(ParamsTest, AwsCliReadsCloudFormationFormat) {
  if (!std::filesystem::exists(kAws)) GTEST_SKIP() << kAws << " not installed (Debian awscli)";
  TempDir dir;
  // The orders service's cfn/ in a workspace of the test's own (params writes only inside it).
  std::filesystem::copy(kSourceDir + "/pipelines/orders/cfn", dir / "cfn");
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "params.json",
      "base": "cfn/params.base.json", "template": "cfn/template.yaml",
      "values": {"AmiId": "ami-0123456789abcdef0", "Version": "orders-main-7"}})",
                            io);
  ASSERT_TRUE(status) << status.error();

  AwsRun run = RunAwsCreateStack(dir, dir / "params.json");
  // The CLI parsed the file into the CreateStack request...
  EXPECT_THAT(run.output,
              AllOf(HasSubstr("'Parameters.member.1.ParameterKey': 'Environment'"),
                    HasSubstr("'Parameters.member.1.ParameterValue': 'staging'"),
                    HasSubstr("'Parameters.member.7.ParameterKey': 'AmiId'"),
                    HasSubstr("'Parameters.member.7.ParameterValue': 'ami-0123456789abcdef0'"),
                    HasSubstr("'Parameters.member.8.ParameterKey': 'Version'"),
                    HasSubstr("'Parameters.member.8.ParameterValue': 'orders-main-7'")))
      << run.output.substr(0, 4000);
  // ...then failed only to reach the closed local port.
  EXPECT_THAT(run.output, HasSubstr("Could not connect to the endpoint URL: "
                                    "\"http://127.0.0.1:9/\""));
  EXPECT_THAT(run.output, Not(HasSubstr("Parameter validation failed")));
}

// The control: the CLI does reject a file it cannot read as parameters, so the test above
// would notice a wrong shape.
TEST(ParamsTest, AwsCliRejectsPlainFormatAsParameters) {
  if (!std::filesystem::exists(kAws)) GTEST_SKIP() << kAws << " not installed (Debian awscli)";
  TempDir dir;
  FakeStepIo io(dir.path());
  ASSERT_TRUE(
      RunParams(R"({"dest": "plain.json", "format": "plain", "values": {"AmiId": "ami-1"}})", io));
  AwsRun run = RunAwsCreateStack(dir, dir / "plain.json");
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("Error parsing parameter '--parameters'"), std::string::npos)
      << run.output.substr(run.output.size() > 2000 ? run.output.size() - 2000 : 0);
  EXPECT_EQ(run.output.find("Parameters.member.1.ParameterKey"), std::string::npos);
}

}  // namespace
}  // namespace runner

namespace runner {
namespace {

// --- Hardening (issue 9) -------------------------------------------------------------------

TEST(ParamsHardeningTest, PathsStayInsideTheWorkspace) {
  // An absolute dest is refused when the pipeline is validated, not re-rooted.
  EXPECT_THAT(Validate("params: {dest: /etc/params.json, values: {A: b}}\n"),
              HasSubstr("error: params.dest '/etc/params.json' is absolute"));
  EXPECT_THAT(Validate("params: {dest: /tmp/x/../p.json, values: {A: b}}\n"),
              HasSubstr("is absolute"));

  TempDir outside;
  TempDir dir;
  std::filesystem::create_directories(dir / "ws/sub");
  WriteTextFile(outside / "secret.json", R"({"A": "b"})");
  WriteTextFile(outside / "t.json", R"({"Parameters": {"A": {"Type": "String"}}})");
  std::filesystem::create_symlink(outside.path(), dir / "ws/link");
  FakeStepIo io(dir / "ws");
  struct Case {
    std::string config;
    std::string what;
  };
  std::vector<Case> cases = {
      {R"({"dest": "../../x.json", "values": {"A": "b"}})", "params.dest: '../../x.json'"},
      {R"({"dest": "sub/../../x.json", "values": {"A": "b"}})", "params.dest: 'sub/../../x.json'"},
      {R"({"dest": "link/p.json", "values": {"A": "b"}})", "params.dest: 'link/p.json'"},
      {R"({"dest": "p.json", "base": "link/secret.json"})", "params.base: 'link/secret.json'"},
      {R"({"dest": "p.json", "base": ")" + outside.path() + R"(/secret.json"})", "params.base"},
      {R"({"dest": "p.json", "values": {"A": "b"}, "template": "link/t.json"})",
       "params.template: 'link/t.json'"},
  };
  for (const Case& c : cases) {
    Status status = RunParams(c.config, io);
    ASSERT_FALSE(status) << c.config;
    EXPECT_THAT(status.error(), AllOf(HasSubstr(c.what), HasSubstr("outside the workspace")))
        << c.config;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "x.json"));
  EXPECT_FALSE(std::filesystem::exists(outside / "p.json"));
  // Inside the workspace, `..` and links that stay inside are fine.
  std::filesystem::create_symlink(dir / "ws/sub", dir / "ws/inner");
  ASSERT_TRUE(RunParams(R"({"dest": "inner/../sub/p.json", "values": {"A": "b"}})", io));
  EXPECT_TRUE(std::filesystem::exists(dir / "ws/sub/p.json"));
}

TEST(ParamsHardeningTest, DeeplyNestedJsonIsRefusedBeforeParsing) {
  TempDir dir;
  FakeStepIo io(dir.path());
  const std::size_t kDeep = 100000;
  WriteTextFile(dir / "arrays.json", std::string(kDeep, '[') + std::string(kDeep, ']'));
  std::string objects;
  for (std::size_t i = 0; i < kDeep; ++i) objects += "{\"a\":";
  WriteTextFile(dir / "objects.json", objects + "1" + std::string(kDeep, '}'));
  WriteTextFile(dir / "t.json", "{\"Parameters\": " + std::string(kDeep, '['));
  for (const std::string& config :
       {std::string(R"({"dest": "p.json", "base": "arrays.json"})"),
        std::string(R"({"dest": "p.json", "base": "objects.json"})"),
        std::string(R"({"dest": "p.json", "values": {"A": "b"}, "template": "t.json"})")}) {
    Status status = RunParams(config, io);
    ASSERT_FALSE(status) << config;
    EXPECT_THAT(status.error(), AllOf(HasSubstr(".json:1:"), HasSubstr("nested deeper than 512")))
        << config;
  }
  // Brackets inside strings do not count, and 512 levels are still read.
  WriteTextFile(dir / "strings.json", R"({"A": ")" + std::string(kDeep, '[') + R"(\"{"})");
  EXPECT_TRUE(RunParams(R"({"dest": "p.json", "format": "plain", "base": "strings.json"})", io));
  auto deep = ParseTemplateParameters(
      "{\"Parameters\": {}, \"M\": " + std::string(510, '[') + std::string(510, ']') + "}",
      "t.json");
  EXPECT_TRUE(deep) << deep.error();
}

// The messages of checking `values` against a template in tests/data/cfn.
std::string CfnErrors(const std::string& template_name, const std::string& values) {
  TempDir dir;
  std::filesystem::copy(kCfnDir, dir / "cfn");
  FakeStepIo io(dir.path());
  Status status = RunParams(R"({"dest": "p.json", "format": "plain", "template": "cfn/)" +
                                template_name + R"(", "values": )" + values + "}",
                            io);
  return status ? std::string() : status.error();
}

TEST(ParamsHardeningTest, NoEchoValuesAreNeverShown) {
  const std::string kSecret = "hunter2-!";
  for (const std::string& values :
       {R"({"DBPassword": ")" + kSecret + R"("})",  // pattern
        std::string(R"({"DBPassword": "short"})"),  // MinLength
        R"({"DBUser": ")" + kSecret + R"(", "DBPassword": "abcdefgh"})"}) {
    std::string errors = CfnErrors("rds_mysql.json", values);
    ASSERT_FALSE(errors.empty()) << values;
    EXPECT_THAT(errors, HasSubstr("(NoEcho: value not shown)")) << errors;
    EXPECT_THAT(errors, AllOf(Not(HasSubstr(kSecret)), Not(HasSubstr("short")))) << errors;
  }
  EXPECT_EQ(CfnErrors("rds_mysql.json", R"({"DBUser": "admin", "DBPassword": "abcdefgh1"})"), "");
}

TEST(ParamsHardeningTest, ConstraintsAsCloudFormationAppliesThem) {
  // A corpus of templates in the shape of AWS's samples; each case one constraint class.
  struct Case {
    std::string template_name;
    std::string values;
    std::string error;  // "" when the values are valid
  };
  std::vector<Case> cases = {
      {"ec2_security_group.yaml", R"({"KeyName": "ops", "SSHLocation": "10.0.0.0/8"})", ""},
      {"ec2_security_group.yaml", R"({"KeyName": "ops", "SSHLocation": "10.0.0.0/8 "})",
       "'SSHLocation' is '10.0.0.0/8 ', which does not match its AllowedPattern"},
      {"ec2_security_group.yaml", R"({"KeyName": "ops", "SSHLocation": "1.2.3/4"})",
       "7 characters long, outside its length limits"},
      {"ec2_security_group.yaml", R"({"KeyName": "ops", "InstanceType": "t2.nano"})",
       "'InstanceType' is 't2.nano', not one of the AllowedValues"},
      // An SSM parameter type's value is the parameter's name, not a list.
      {"ec2_security_group.yaml", R"({"KeyName": "ops", "LatestAmiId": "/a,b"})", ""},
      {"rds_mysql.json", R"({"DBUser": "a", "DBPassword": "abcdefgh", "DBAllocatedStorage": "19"})",
       "'DBAllocatedStorage' is '19', outside its range"},
      {"rds_mysql.json",
       R"({"DBUser": "a", "DBPassword": "abcdefgh", "DBAllocatedStorage": "2e2"})", ""},
      {"rds_mysql.json",
       R"({"DBUser": "a", "DBPassword": "abcdefgh", "DBAllocatedStorage": "20GB"})",
       "'DBAllocatedStorage' is '20GB', which is not a number"},
      {"rds_mysql.json",
       R"({"DBUser": "a", "DBPassword": "abcdefgh", "DBName": ")" + std::string(65, 'd') + R"("})",
       "65 characters long"},
      // Lists: constraints hold for each item.
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd,subnet-89abcdef", "AvailabilityZones": "eu-west-1a,eu-west-1c",
           "Ports": "80,443"})",
       ""},
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd,sg-89abcdef", "AvailabilityZones": "eu-west-1a", "Ports": "1"})",
       "'Subnets' item 2 is 'sg-89abcdef', which does not match its AllowedPattern"},
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd", "AvailabilityZones": "eu-west-1a,us-east-1a", "Ports": "1"})",
       "'AvailabilityZones' item 2 is 'us-east-1a', not one of the AllowedValues"},
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd", "AvailabilityZones": "eu-west-1a", "Ports": "80,70000"})",
       "'Ports' item 2 is '70000', outside its range"},
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd", "AvailabilityZones": "eu-west-1a", "Ports": "80,http"})",
       "'Ports' item 2 is 'http', which is not a number"},
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd", "AvailabilityZones": "eu-west-1a", "Ports": "1",
           "DesiredCapacity": "11"})",
       "'DesiredCapacity' is '11', outside its range in cfn/vpc_subnets.yaml: MinValue 1, MaxValue "
       "10"},
      // The whole value must match, not a part of it.
      {"vpc_subnets.yaml",
       R"({"Subnets": "subnet-0123abcd", "AvailabilityZones": "eu-west-1a", "Ports": "1",
           "OperatorEmail": "x ops@example.com"})",
       "'OperatorEmail' is 'x ops@example.com', which does not match"},
  };
  for (const Case& c : cases) {
    std::string errors = CfnErrors(c.template_name, c.values);
    if (c.error.empty()) {
      EXPECT_EQ(errors, "") << c.values;
    } else {
      EXPECT_THAT(errors, HasSubstr(c.error)) << c.values;
    }
  }
}

TEST(ParamsHardeningTest, AllowedPatternRunsInLinearTime) {
  auto declared = [](const std::string& pattern) {
    TemplateParameter parameter;
    parameter.name = "Value";
    parameter.allowed_pattern = pattern;
    return std::vector<TemplateParameter>{parameter};
  };
  std::vector<std::string> warnings;
  OrderedParams params;
  // std::regex overflowed its recursion on a long value, and backtracked for ever on (a*)*b.
  params.Set("Value", std::string(200000, 'a'));
  EXPECT_TRUE(
      CheckAgainstTemplate(params, declared("a*"), "t.yaml", ParamsFormat::kPlain, warnings));
  EXPECT_TRUE(
      CheckAgainstTemplate(params, declared("(a|aa)*"), "t.yaml", ParamsFormat::kPlain, warnings));
  params.Set("Value", std::string(30, 'a'));
  Status never_ends =
      CheckAgainstTemplate(params, declared("(a*)*b"), "t.yaml", ParamsFormat::kPlain, warnings);
  ASSERT_FALSE(never_ends);
  EXPECT_THAT(never_ends.error(), HasSubstr("which does not match its AllowedPattern '(a*)*b'"));
  // Java features RE2 lacks: a clear error naming the parameter, not a silent pass.
  for (std::string pattern : {"(?=a)a*", "(a)\\1", "a*+"}) {
    Status status =
        CheckAgainstTemplate(params, declared(pattern), "t.yaml", ParamsFormat::kPlain, warnings);
    ASSERT_FALSE(status) << pattern;
    EXPECT_THAT(status.error(), HasSubstr("'Value': its AllowedPattern '" + pattern +
                                          "' in t.yaml cannot be checked"));
  }
}

}  // namespace
}  // namespace runner
