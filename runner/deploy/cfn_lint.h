// The blue-green lint of a CloudFormation template (SPEC section 7): Auto Scaling group settings
// with which a deploy shrinks the live group or takes its instances out of service, traps that
// cfn-lint has no rule for. An error makes a deploy's preflight refuse the template; warnings are
// only shown.
//
// For every resource of Type AWS::AutoScaling::AutoScalingGroup:
// - When its UpdatePolicy has an AutoScalingRollingUpdate mapping, errors for a DesiredCapacity
//   property (every deploy resets the live capacity to it), MinInstancesInService absent or 0,
//   and MinInstancesInService at or above MaxSize (CloudFormation requires it below); warnings
//   for MinInstancesInService equal to MinSize, MinInstancesInService not a Ref to a template
//   parameter (the deployer sets that parameter from the live capacity), and MaxBatchSize absent
//   or not equal to MaxSize.
// - Whatever its UpdatePolicy, a warning when TerminationPolicies does not start with
//   OldestLaunchConfiguration or OldestLaunchTemplate, then OldestInstance.
//
// A finding points at the offending key, at AutoScalingRollingUpdate for a policy property that
// is missing, at the resource's name for a group property that is missing. Values are integers
// written as numbers or strings ("2" or 2), or a Ref to a parameter (`!Ref P`, {"Ref": "P"}),
// which compares as the parameter's Default when it has one (the message says so) and is equal
// to another Ref to the same parameter whatever its value. Nothing else is evaluated: other
// intrinsic functions (Fn::If, !Sub...), a Ref to a resource or a pseudo parameter, and
// Properties, UpdatePolicy or AutoScalingRollingUpdate written as an intrinsic function make the
// findings that would need their value impossible, so those are not reported.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runner/diagnostics.h"
#include "runner/result.h"

namespace runner::deploy {

// Checks the template `source` (YAML, short-form tags such as !Ref included, or JSON) and reports
// each finding to `diags`, which names the template's file. A text that is not YAML, is not a
// mapping, or has no Resources mapping is an error at the place of the problem.
void LintTemplate(std::string_view source, Diagnostics& diags);

// A file's lint: Diagnostics::Format of the findings (empty when there is none) and whether any
// of them is an error.
struct LintResult {
  std::string text;
  bool errors = false;
};

// Reads the template at `path` (named so in the findings) and lints it. Fails only when the file
// cannot be read, or is larger than kMaxTemplateBytes.
Result<LintResult> LintTemplateFile(const std::string& path);

// Far above CloudFormation's own limit (1 MB from S3), so that no real template is refused.
constexpr size_t kMaxTemplateBytes = size_t{16} << 20;

// An Auto Scaling group whose AutoScalingRollingUpdate policy takes MinInstancesInService from a
// template parameter: the parameter a deploy sets from the group's live DesiredCapacity
// (SPEC section 7, "Capacity").
struct RollingGroup {
  std::string logical_id;
  std::string min_in_service_parameter;
};
// Those groups of the template `source`, in template order; an error when it is not a template.
Result<std::vector<RollingGroup>> RollingUpdateGroups(std::string_view source);

}  // namespace runner::deploy
