// Checks a zip archive as an AWS CodeDeploy revision for EC2/on-premises (SPEC section 6,
// `codedeploy: true`), before it is published.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runner/diagnostics.h"
#include "runner/result.h"

namespace runner {

// What CodeDeploy sees of one archive entry.
struct RevisionFile {
  bool directory = false;
  bool executable = false;  // any exec bit in the entry's Unix mode
  std::string head;         // the first bytes of a file (up to 128), for the shebang check
};

// Entries by archive path, without leading or trailing '/'.
using RevisionListing = std::map<std::string, RevisionFile, std::less<>>;

struct Revision {
  RevisionListing files;
  bool has_appspec = false;
  std::string appspec;  // the text of appspec.yml at the archive root
};

// Reads the archive at `zip_path` with libarchive: every entry and the text of appspec.yml.
// Names are read as UTF-8 whatever the process locale.
Result<Revision> ReadRevision(const std::string& zip_path);

// The lifecycle events of an EC2/on-premises deployment, in order.
const std::vector<std::string>& LifecycleEvents();

// Checks appspec.yml (`revision.appspec`) against the revision's files, by the rules of the
// CodeDeploy agent (aws/aws-codedeploy-agent, application_specification/). Every problem goes
// to `diags` with its line and column in appspec.yml.
// Errors: appspec.yml missing from the root, invalid YAML, an ECS or Lambda appspec (a
// `Resources` key: "this is not an EC2/on-premises appspec"), a key repeated in one mapping
// (the agent silently keeps the last), unknown keys, `version` not the number 0.0, `os` not
// linux/windows, a files[].source not in the archive (`/` is everything), a hook name that is
// not a lifecycle event or is reserved (DownloadBundle, Install), a hook location not in the
// archive, a timeout not in 1..3600, an event's timeouts adding up to more than 3600 s (a
// script without `timeout` adds 0), `permissions` on windows, a permissions `mode` that is not
// 1 to 4 octal digits or is a YAML octal number (`mode: 0755`, which the agent reads as 493),
// a permissions `type` other than file and directory.
// Accepted as the agent accepts them: Windows separators in sources and locations
// (`\index.html`, `.\dir`), `overwrite` in a files item, `sudo` in a script, an empty hook.
// Warnings (linux): a hook script without an exec bit, or without a `#!` line.
void ValidateAppSpec(const Revision& revision, Diagnostics& diags);

}  // namespace runner
