// The build's records (SPEC section 5): STATE/builds/BUILD_ID/report.json and junit.xml.
#pragma once

#include <string>

#include "runner/build_record.h"
#include "runner/masker.h"
#include "runner/result.h"

namespace runner {

// report.json's text. Every string value is masked. A build whose status is `running` (the
// live record, live.json) has `finished` and `duration_s` null.
std::string ReportJson(const BuildRecord& build, const SecretMasker& masker);

// junit.xml's text: one test case per step, a failure's message holding the log's tail.
// Written with libxml2; characters XML 1.0 cannot hold (control characters, invalid UTF-8)
// are replaced. Empty only when memory ran out.
std::string JunitXml(const BuildRecord& build, const SecretMasker& masker);

// Writes both into `build_dir`, each atomically.
Status WriteReports(const std::string& build_dir, const BuildRecord& build,
                    const SecretMasker& masker);

}  // namespace runner
