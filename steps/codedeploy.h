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

// Checks appspec.yml (`revision.appspec`) against the revision's files. Every problem goes to
// `diags` with its line and column in appspec.yml:
// errors: appspec.yml missing from the root, invalid YAML, unknown keys, `version` not 0.0,
// `os` not linux/windows, a files[].source not in the archive (`/` is everything), a hook
// name that is not a lifecycle event or is reserved (DownloadBundle, Install), a hook
// location not in the archive, a timeout not in 1..3600, or an event's scripts adding up to
// more than 3600 s (a script without `timeout` counts CodeDeploy's default, 3600);
// warnings (linux): a hook script without an exec bit, or without a `#!` line.
void ValidateAppSpec(const Revision& revision, Diagnostics& diags);

}  // namespace runner
