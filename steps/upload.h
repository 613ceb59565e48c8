// The `upload` step kind (SPEC section 6): publishes files to S3 (or an S3-compatible store)
// or to a local store, with a manifest.json that lists what was published.
//
// Contract decisions beyond the SPEC:
// - `to`: `s3://bucket/prefix`, `file:///abs/dir`, `file://rel/dir` or a plain path; a
//   relative local store is relative to the workspace (the SPEC's default store is
//   `file://.runner/store`, beside the state dir). `to` is a directory whether or not it ends
//   in `/`; the `url` output always ends in `/`.
// - `files` are relative to the step's directory. A plain file keeps its base name; a
//   directory uploads every file below it, keeping the path below it (as `dir/**`); a glob
//   keeps each match's path below the glob's fixed prefix (`cfn/**/*.yaml` puts
//   `cfn/a/b.yaml` at `a/b.yaml`). An entry that matches nothing, two files for one name,
//   and a file named `manifest.json` at the top are errors before anything is sent.
// - `part_size` takes B, K/KB/KiB, M/MB/MiB, G/GB/GiB, all binary (1 MB = 1 MiB, as the AWS
//   CLI reads them); 5 MiB to 5 GiB. Files up to part_size go up in one PUT, larger ones as
//   multipart uploads with up to `concurrency` parts in flight (default 8, 1 to 64); small
//   files go up `concurrency` at a time.
// - manifest.json (runner/manifest.h) is written last, so its presence means the upload is
//   complete. `source` is the file as listed, relative to the workspace.
// - The store is runner/artifact_store.h's: a local store writes each file atomically
//   (temporary file, rename); S3 objects appear whole by nature. A failed or cancelled upload
//   aborts its multipart uploads and writes no manifest; the objects already sent stay.
// - Outputs: `url` (the `to` prefix as an s3:// or file:// URL), `manifest_url`. Artifacts:
//   one per file, with its url.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runner/result.h"
#include "steps/step_kind.h"

namespace runner {

extern const LegacyStepKind kUploadStep;

// "16MiB", "5 MB", "1048576" as bytes (see above for the units).
Result<std::uint64_t> ParseByteSize(std::string_view text);

// A file to publish.
struct UploadSource {
  std::string path;  // absolute
  std::string name;  // the path below `to`
};

// The files `patterns` select in `dir` (see above), in the order listed, each glob's or
// directory's matches sorted by name.
Result<std::vector<UploadSource>> CollectUploadSources(const std::vector<std::string>& patterns,
                                                       const std::string& dir);

}  // namespace runner
