#include "runner/deploy/cfn_lint.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/test_util.h"

namespace runner::deploy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TempDir;
using testing::WriteTextFile;

const std::string kSourceDir = RUNNER_SOURCE_DIR;
const std::string kDataDir = kSourceDir + "/tests/data/cfn_lint/";

// Each finding of the template `text`, in the order found, as "LINE:COL: SEVERITY: MESSAGE".
std::vector<std::string> Findings(std::string_view text) {
  Diagnostics diags("template.yaml", std::string(text));
  LintTemplate(text, diags);
  std::vector<std::string> out;
  for (const Diagnostic& finding : diags.diagnostics()) {
    out.push_back(fmt::format(
        "{}:{}: {}: {}", finding.where.line, finding.where.column,
        finding.severity == Diagnostic::Severity::kError ? "error" : "warning", finding.message));
  }
  return out;
}

// A group that breaks no rule; the tests below change one line of it.
const char kGoodGroup[] = R"(Parameters:
  InService: {Type: Number, Default: 2}
Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: 1
      MaxSize: 4
      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]
    UpdatePolicy:
      AutoScalingRollingUpdate:
        MinInstancesInService: !Ref InService
        MaxBatchSize: 4
)";

// kGoodGroup with its line `from` (whole, without the line break) replaced by `to`.
std::string GoodGroupWith(std::string_view from, std::string_view to) {
  std::string text = kGoodGroup;
  size_t at = text.find(std::string(from) + "\n");
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(CfnLintTest, CorrectTemplatesHaveNoFinding) {
  EXPECT_THAT(Findings(kGoodGroup), IsEmpty());
  for (const char* name : {"good.yaml", "good.json"}) {
    auto result = LintTemplateFile(kDataDir + name);
    ASSERT_TRUE(result) << result.error();
    EXPECT_EQ(result->text, "") << name;
    EXPECT_FALSE(result->errors) << name;
  }
}

TEST(CfnLintTest, DesiredCapacityWithRollingUpdateIsAnErrorAtTheKey) {
  std::string text =
      GoodGroupWith("      MinSize: 1", "      MinSize: 1\n      DesiredCapacity: 2");
  Diagnostics diags("pipeline/cfn/template.yaml", text);
  LintTemplate(text, diags);
  EXPECT_EQ(diags.Format(),
            "pipeline/cfn/template.yaml:8:7: error: resource 'Web': DesiredCapacity with an "
            "AutoScalingRollingUpdate policy resets the group's live capacity on every deploy; "
            "remove it and let the group keep its size\n"
            "      DesiredCapacity: 2\n"
            "      ^\n");
  // As a Ref too: whatever its value, the template sets the capacity.
  EXPECT_THAT(Findings(GoodGroupWith("      MinSize: 1",
                                     "      MinSize: 1\n      DesiredCapacity: !Ref InService")),
              ElementsAre(StartsWith("8:7: error: resource 'Web': DesiredCapacity with")));
}

TEST(CfnLintTest, DesiredCapacityWithoutRollingUpdateIsFine) {
  EXPECT_THAT(Findings(R"(Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: 1
      MaxSize: 4
      DesiredCapacity: 2
      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]
    UpdatePolicy:
      AutoScalingReplacingUpdate:
        WillReplace: true
)"),
              IsEmpty());
}

TEST(CfnLintTest, MissingMinInstancesInServiceIsAnErrorAtThePolicy) {
  EXPECT_THAT(Findings(GoodGroupWith("        MinInstancesInService: !Ref InService", "")),
              ElementsAre("11:7: error: resource 'Web': AutoScalingRollingUpdate has no "
                          "MinInstancesInService, so a deploy may take every instance out of "
                          "service at once (it defaults to 0); add MinInstancesInService: !Ref a "
                          "Number parameter, which the deployer sets from the group's live "
                          "capacity"));
  // A null value sets nothing.
  EXPECT_THAT(Findings(GoodGroupWith("        MinInstancesInService: !Ref InService",
                                     "        MinInstancesInService:")),
              ElementsAre(StartsWith("11:7: error: resource 'Web': AutoScalingRollingUpdate has "
                                     "no MinInstancesInService")));
}

TEST(CfnLintTest, ZeroMinInstancesInServiceIsAnError) {
  for (const char* zero : {"0", "\"0\""}) {
    EXPECT_THAT(
        Findings(GoodGroupWith("        MinInstancesInService: !Ref InService",
                               std::string("        MinInstancesInService: ") + zero)),
        ElementsAre(StartsWith("12:9: warning: resource 'Web': MinInstancesInService is not a Ref "
                               "to a template parameter"),
                    "12:9: error: resource 'Web': MinInstancesInService (0) lets a deploy take "
                    "every instance out of service at once; make it a Ref to a Number parameter, "
                    "which the deployer sets from the group's live capacity"))
        << zero;
  }
}

TEST(CfnLintTest, ZeroDefaultOfTheParameterIsAnErrorThatSaysSo) {
  EXPECT_THAT(Findings(GoodGroupWith("  InService: {Type: Number, Default: 2}",
                                     "  InService: {Type: Number, Default: 0}")),
              ElementsAre("12:9: error: resource 'Web': MinInstancesInService (0, the Default of "
                          "parameter 'InService') lets a deploy take every instance out of service "
                          "at once; give parameter 'InService' a Default of at least 1 (the "
                          "deployer sets it from the group's live capacity)"));
}

TEST(CfnLintTest, MinInstancesInServiceAtOrAboveMaxSizeIsAnError) {
  std::string at_max = GoodGroupWith("        MinInstancesInService: !Ref InService",
                                     "        MinInstancesInService: 4");
  EXPECT_THAT(Findings(at_max),
              ElementsAre(StartsWith("12:9: warning: resource 'Web': MinInstancesInService is not "
                                     "a Ref"),
                          "12:9: error: resource 'Web': MinInstancesInService (4) is at or above "
                          "MaxSize (4): CloudFormation requires it below MaxSize and fails the "
                          "update; lower it or raise MaxSize"));
  std::string above_max = GoodGroupWith("      MaxSize: 4", "      MaxSize: \"1\"");
  EXPECT_THAT(Findings(above_max),
              ElementsAre("12:9: error: resource 'Web': MinInstancesInService (2, the Default of "
                          "parameter 'InService') is at or above MaxSize (1): CloudFormation "
                          "requires it below MaxSize and fails the update; lower it or raise "
                          "MaxSize",
                          StartsWith("13:9: warning: resource 'Web': MaxBatchSize (4) differs "
                                     "from MaxSize (1)")));
}

TEST(CfnLintTest, RefsCompareByTheParametersDefaults) {
  const char* text = R"(Parameters:
  InService:
    Type: Number
    Default: "6"
  Largest:
    Type: Number
    Default: 6
Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: 1
      MaxSize: !Ref Largest
      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]
    UpdatePolicy:
      AutoScalingRollingUpdate:
        MinInstancesInService: !Ref InService
        MaxBatchSize: !Ref Largest
)";
  EXPECT_THAT(Findings(text),
              ElementsAre("17:9: error: resource 'Web': MinInstancesInService (6, the Default of "
                          "parameter 'InService') is at or above MaxSize (6, the Default of "
                          "parameter 'Largest'): CloudFormation requires it below MaxSize and "
                          "fails the update; lower it or raise MaxSize"));
}

TEST(CfnLintTest, RefsWithoutDefaultSkipTheComparisons) {
  const char* text = R"(Parameters:
  InService: {Type: Number}
  Largest: {Type: Number}
Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: 9
      MaxSize: !Ref Largest
      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]
    UpdatePolicy:
      AutoScalingRollingUpdate:
        MinInstancesInService: !Ref InService
        MaxBatchSize: 1
)";
  EXPECT_THAT(Findings(text), IsEmpty());
}

TEST(CfnLintTest, OneParameterForTwoValuesIsEqualWhateverItsValue) {
  const char* text = R"(Parameters:
  Size: {Type: Number}
Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: !Ref Size
      MaxSize: !Ref Size
      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]
    UpdatePolicy:
      AutoScalingRollingUpdate:
        MinInstancesInService: !Ref Size
        MaxBatchSize: !Ref Size
)";
  EXPECT_THAT(Findings(text),
              ElementsAre("12:9: error: resource 'Web': MinInstancesInService (parameter 'Size') "
                          "is at or above MaxSize (parameter 'Size'): CloudFormation requires it "
                          "below MaxSize and fails the update; lower it or raise MaxSize",
                          "12:9: warning: resource 'Web': MinInstancesInService (parameter "
                          "'Size') equals MinSize (parameter 'Size'), so a deploy of a group "
                          "scaled out above MinSize takes instances out of service down to "
                          "MinSize; set it from the group's live capacity (a parameter of its "
                          "own, which the deployer sets)"));
}

TEST(CfnLintTest, MinInstancesInServiceEqualToMinSizeIsAWarning) {
  EXPECT_THAT(Findings(GoodGroupWith("      MinSize: 1", "      MinSize: \"2\"")),
              ElementsAre("12:9: warning: resource 'Web': MinInstancesInService (2, the Default "
                          "of parameter 'InService') equals MinSize (2), so a deploy of a group "
                          "scaled out above MinSize takes instances out of service down to "
                          "MinSize; set it from the group's live capacity (a parameter of its "
                          "own, which the deployer sets)"));
}

TEST(CfnLintTest, MinInstancesInServiceThatIsNoParameterIsAWarning) {
  const std::string expected =
      "12:9: warning: resource 'Web': MinInstancesInService is not a Ref to a template "
      "parameter, so the deployer cannot set it from the group's live capacity; declare a Number "
      "parameter and write MinInstancesInService: !Ref it";
  // A literal, a Ref to a resource or a pseudo parameter, another intrinsic function: the If's
  // 0 and 9 are not evaluated (no error for 0, none for 9 above MaxSize).
  for (const char* value : {"2", "!Ref Web", "!Ref AWS::NoValue", "{Ref: AWS::AccountId}",
                            "!If [Production, 0, 9]", "{\"Fn::If\": [Production, 0, 9]}"}) {
    EXPECT_THAT(Findings(GoodGroupWith("        MinInstancesInService: !Ref InService",
                                       std::string("        MinInstancesInService: ") + value)),
                ElementsAre(expected))
        << value;
  }
  // The long form of a Ref to the parameter is a parameter.
  EXPECT_THAT(Findings(GoodGroupWith("        MinInstancesInService: !Ref InService",
                                     "        MinInstancesInService: {Ref: InService}")),
              IsEmpty());
}

TEST(CfnLintTest, MaxBatchSizeAbsentOrNotMaxSizeIsAWarning) {
  EXPECT_THAT(Findings(GoodGroupWith("        MaxBatchSize: 4", "        PauseTime: PT5M")),
              ElementsAre("11:7: warning: resource 'Web': AutoScalingRollingUpdate has no "
                          "MaxBatchSize, so CloudFormation replaces one instance at a time; set "
                          "MaxBatchSize to MaxSize (the same value or parameter) so that a deploy "
                          "brings up the new instances in as few batches as MaxSize allows"));
  EXPECT_THAT(Findings(GoodGroupWith("        MaxBatchSize: 4", "        MaxBatchSize: \"1\"")),
              ElementsAre("13:9: warning: resource 'Web': MaxBatchSize (1) differs from MaxSize "
                          "(4), so a deploy replaces the instances in more batches than MaxSize "
                          "allows; set it to MaxSize (the same value or parameter)"));
  // Equal as a string and a number; not evaluated as a Sub.
  for (const char* value : {"\"4\"", "!Sub \"${InService}\""}) {
    EXPECT_THAT(Findings(GoodGroupWith("        MaxBatchSize: 4",
                                       std::string("        MaxBatchSize: ") + value)),
                IsEmpty())
        << value;
  }
}

TEST(CfnLintTest, TerminationPoliciesNotOldestFirstIsAWarning) {
  const std::string advice =
      "so a scale-in after a deploy may terminate new instances before the old ones; ";
  const std::string policies = "      TerminationPolicies: [OldestLaunchTemplate, OldestInstance]";
  EXPECT_THAT(Findings(GoodGroupWith(policies, "")),
              ElementsAre("4:3: warning: resource 'Web': no TerminationPolicies, " + advice +
                          "add TerminationPolicies: [OldestLaunchTemplate, OldestInstance]"));
  EXPECT_THAT(Findings(GoodGroupWith(
                  policies, "      TerminationPolicies: [OldestInstance, OldestLaunchTemplate]")),
              ElementsAre("9:7: warning: resource 'Web': TerminationPolicies starts with "
                          "OldestInstance, OldestLaunchTemplate, " +
                          advice + "start it with OldestLaunchTemplate, OldestInstance"));
  EXPECT_THAT(Findings(GoodGroupWith(policies, "      TerminationPolicies: []")),
              ElementsAre(StartsWith("9:7: warning: resource 'Web': TerminationPolicies is "
                                     "empty, ")));
  EXPECT_THAT(
      Findings(GoodGroupWith(policies, "      TerminationPolicies: [OldestLaunchTemplate]")),
      ElementsAre(StartsWith("9:7: warning: resource 'Web': TerminationPolicies starts "
                             "with OldestLaunchTemplate, ")));
  // A group with a launch configuration is told its own policy.
  EXPECT_THAT(Findings(GoodGroupWith(policies, "      LaunchConfigurationName: web")),
              ElementsAre(HasSubstr("add TerminationPolicies: [OldestLaunchConfiguration, "
                                    "OldestInstance]")));
  for (const char* good :
       {"[OldestLaunchConfiguration, OldestInstance]",
        "[OldestLaunchTemplate, OldestInstance, Default]",
        "!If [Production, [Default], [OldestLaunchTemplate]]", "[!Ref Policy, OldestInstance]"}) {
    EXPECT_THAT(
        Findings(GoodGroupWith(policies, std::string("      TerminationPolicies: ") + good)),
        IsEmpty())
        << good;
  }
}

TEST(CfnLintTest, TerminationPoliciesAreCheckedWithoutARollingUpdate) {
  EXPECT_THAT(Findings(R"(Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: 1
      MaxSize: 4
)"),
              ElementsAre(StartsWith("2:3: warning: resource 'Web': no TerminationPolicies")));
}

TEST(CfnLintTest, EveryTrapOfAYamlTemplateWithShortTags) {
  auto result = LintTemplateFile(kDataDir + "traps.yaml");
  ASSERT_TRUE(result) << result.error();
  EXPECT_TRUE(result->errors);
  EXPECT_THAT(Findings(testing::ReadTextFile(kDataDir + "traps.yaml")),
              ElementsAre(StartsWith("25:7: error: resource 'WebGroup': DesiredCapacity with"),
                          StartsWith("31:9: warning: resource 'WebGroup': MinInstancesInService "
                                     "is not a Ref to a template parameter"),
                          StartsWith("31:9: error: resource 'WebGroup': MinInstancesInService (4) "
                                     "is at or above MaxSize (4, the Default of parameter "
                                     "'GroupMax')"),
                          StartsWith("31:9: warning: resource 'WebGroup': MinInstancesInService "
                                     "(4) equals MinSize (4)"),
                          StartsWith("32:9: warning: resource 'WebGroup': MaxBatchSize (1) "
                                     "differs from MaxSize (4, the Default of parameter "
                                     "'GroupMax')"),
                          "28:7: warning: resource 'WebGroup': TerminationPolicies starts with "
                          "OldestInstance, OldestLaunchConfiguration, so a scale-in after a "
                          "deploy may terminate new instances before the old ones; start it with "
                          "OldestLaunchConfiguration, OldestInstance"));
  // The file's findings in order of position, each under its source line.
  EXPECT_THAT(result->text, StartsWith(kDataDir +
                                       "traps.yaml:25:7: error: resource 'WebGroup': "
                                       "DesiredCapacity with an AutoScalingRollingUpdate policy "
                                       "resets the group's live capacity on every deploy; remove "
                                       "it and let the group keep its size\n"
                                       "      DesiredCapacity: 4\n"
                                       "      ^\n" +
                                       kDataDir + "traps.yaml:28:7: warning:"));
}

TEST(CfnLintTest, EveryTrapOfAJsonTemplateWithLongForms) {
  auto result = LintTemplateFile(kDataDir + "traps.json");
  ASSERT_TRUE(result) << result.error();
  EXPECT_TRUE(result->errors);
  EXPECT_THAT(Findings(testing::ReadTextFile(kDataDir + "traps.json")),
              ElementsAre(StartsWith("22:9: error: resource 'WebGroup': DesiredCapacity with"),
                          StartsWith("31:11: error: resource 'WebGroup': MinInstancesInService "
                                     "(0, the Default of parameter 'InServiceCount') lets a "
                                     "deploy take every instance out of service at once"),
                          StartsWith("30:9: warning: resource 'WebGroup': AutoScalingRollingUpdate "
                                     "has no MaxBatchSize"),
                          StartsWith("17:5: warning: resource 'WebGroup': no TerminationPolicies, "
                                     "so a scale-in after a deploy may terminate new instances "
                                     "before the old ones; add TerminationPolicies: "
                                     "[OldestLaunchTemplate, OldestInstance]")));
}

TEST(CfnLintTest, JsonIndentedWithTabsIsRead) {
  EXPECT_THAT(Findings("{\n\t\"Resources\": {\n\t\t\"Web\": {\n\t\t\t\"Type\": "
                       "\"AWS::AutoScaling::AutoScalingGroup\",\n\t\t\t\"Properties\": "
                       "{\"MinSize\": 1, \"MaxSize\": 2}\n\t\t}\n\t}\n}\n"),
              ElementsAre(StartsWith("3:3: warning: resource 'Web': no TerminationPolicies")));
}

TEST(CfnLintTest, OtherResourcesAreIgnored) {
  EXPECT_THAT(Findings(R"(Resources:
  Box:
    Type: AWS::EC2::Instance
    Properties:
      DesiredCapacity: 2
    UpdatePolicy:
      AutoScalingRollingUpdate: {MinInstancesInService: 0}
  Group:
    Type: !Ref GroupType
  Odd: just a scalar
  Listed: [1, 2]
)"),
              IsEmpty());
}

TEST(CfnLintTest, IntrinsicPropertiesOrPolicyAreNotEvaluated) {
  // Properties as a whole, or the rolling update policy, under an If: nothing to check.
  EXPECT_THAT(Findings(R"(Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties: !If [Big, {MinSize: 4, MaxSize: 4, DesiredCapacity: 4}, {MinSize: 1, MaxSize: 2}]
    UpdatePolicy:
      AutoScalingRollingUpdate: {MinInstancesInService: 0}
)"),
              IsEmpty());
  EXPECT_THAT(Findings(GoodGroupWith("      AutoScalingRollingUpdate:",
                                     "      AutoScalingRollingUpdate: !If\n"
                                     "        - Production\n"
                                     "        - {MinInstancesInService: 0}\n"
                                     "        - !Ref AWS::NoValue\n"
                                     "      Other:")),
              IsEmpty());
  // The same in JSON's long form.
  EXPECT_THAT(Findings(R"({"Resources": {"Web": {
    "Type": "AWS::AutoScaling::AutoScalingGroup",
    "Properties": {"Fn::If": ["Big", {"MinSize": 4, "MaxSize": 4}, {"MinSize": 1, "MaxSize": 2}]},
    "UpdatePolicy": {"AutoScalingRollingUpdate": {"MinInstancesInService": 0}}}}}
)"),
              IsEmpty());
  EXPECT_THAT(Findings(R"({"Resources": {"Web": {
    "Type": "AWS::AutoScaling::AutoScalingGroup",
    "Properties": {"MinSize": 1, "MaxSize": 2,
                   "TerminationPolicies": ["OldestLaunchTemplate", "OldestInstance"]},
    "UpdatePolicy": {"AutoScalingRollingUpdate": {
      "Fn::If": ["Production", {"MinInstancesInService": 0}, {"Ref": "AWS::NoValue"}]}}}}}
)"),
              IsEmpty());
}

TEST(CfnLintTest, ATemplateThatIsNoMappingWithResourcesIsAnErrorWithPosition) {
  EXPECT_THAT(Findings("- Resources\n- Web\n"),
              ElementsAre("1:1: error: a CloudFormation template is a mapping with 'Resources', "
                          "not a list"));
  EXPECT_THAT(Findings("# nothing yet\n\n  \"just text\"\n"),
              ElementsAre("3:3: error: a CloudFormation template is a mapping with 'Resources', "
                          "not a scalar"));
  EXPECT_THAT(Findings("---\n"), ElementsAre(StartsWith("1:1: error: the template is empty")));
  EXPECT_THAT(Findings(""),
              ElementsAre("1:1: error: the template is empty: a CloudFormation template is a "
                          "mapping with 'Resources'"));
  EXPECT_THAT(Findings("\n\nAWSTemplateFormatVersion: \"2010-09-09\"\nParameters: {}\n"),
              ElementsAre("3:1: error: the template has no 'Resources': a CloudFormation "
                          "template declares its resources under 'Resources'"));
  EXPECT_THAT(Findings("{\"Parameters\": {},\n \"Resources\": [\"Web\"]}\n"),
              ElementsAre("2:15: error: 'Resources' must be a mapping of resource names to "
                          "resources, not a list"));
  EXPECT_THAT(Findings("Description: x\nResources:\n"),
              ElementsAre("2:1: error: 'Resources' must be a mapping of resource names to "
                          "resources, not nothing"));
}

TEST(CfnLintTest, SyntaxErrorsAreErrorsWithPosition) {
  EXPECT_THAT(Findings("Resources:\n  Web:\n\tType: x\n"),
              ElementsAre(StartsWith("3:1: error: tab used for indentation")));
  EXPECT_THAT(Findings("{\"Resources\": {\"Web\": {\"Type\": \"x}}}\n"),
              ElementsAre(StartsWith("1:32: error: unclosed quote")));
  EXPECT_THAT(Findings("Resources:\n  Web: [1, 2\n"),
              ElementsAre(StartsWith("2:8: error: unclosed '['")));
}

TEST(CfnLintTest, OrdersTemplateHasNoError) {
  auto result = LintTemplateFile(kSourceDir + "/pipelines/orders/cfn/template.yaml");
  ASSERT_TRUE(result) << result.error();
  EXPECT_FALSE(result->errors) << result->text;
  EXPECT_THAT(result->text, Not(HasSubstr(": error: ")));
  EXPECT_THAT(result->text, Not(HasSubstr("TerminationPolicies")));
}

TEST(CfnLintTest, AFileThatCannotBeReadFails) {
  TempDir dir;
  auto missing = LintTemplateFile(dir / "absent.yaml");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error(), HasSubstr("cannot read " + (dir / "absent.yaml")));

  WriteTextFile(dir / "huge.yaml", std::string(kMaxTemplateBytes + 1, '#'));
  auto huge = LintTemplateFile(dir / "huge.yaml");
  ASSERT_FALSE(huge);
  EXPECT_THAT(huge.error(), HasSubstr("huge.yaml: larger than 16 MiB"));
}

TEST(CfnRollingGroupsTest, NamesTheParameterEachRollingGroupTakesItsMinimumFrom) {
  auto groups = RollingUpdateGroups(R"(Parameters:
  Keep: {Type: Number, Default: 1}
Resources:
  Web:
    Type: AWS::AutoScaling::AutoScalingGroup
    UpdatePolicy:
      AutoScalingRollingUpdate: {MinInstancesInService: !Ref Keep, MaxBatchSize: 2}
    Properties: {MinSize: 1, MaxSize: 2}
  Fixed:
    Type: AWS::AutoScaling::AutoScalingGroup
    UpdatePolicy:
      AutoScalingRollingUpdate: {MinInstancesInService: 1}
  Bucket:
    Type: AWS::S3::Bucket
)");
  ASSERT_TRUE(groups) << groups.error();
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_EQ((*groups)[0].logical_id, "Web");
  EXPECT_EQ((*groups)[0].min_in_service_parameter, "Keep");
  EXPECT_FALSE(RollingUpdateGroups("Resources: [unclosed"));
}

}  // namespace
}  // namespace runner::deploy
