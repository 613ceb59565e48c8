// The `upload` step kind (SPEC section 6): publishes files to S3 (or an S3-compatible store)
// or to a local store, with a manifest.json that lists what was published.
//
// Contract decisions beyond the SPEC:
// - `to`: `s3://bucket/prefix`, `file:///abs/dir`, `file://rel/dir` or a plain path; a
//   relative local store is relative to the workspace (the SPEC's default store is
//   `file://.runner/store`, beside the state dir). `to` is a directory whether or not it ends
//   in `/`; the `url` output always ends in `/`.
// - `files` are relative to the step's directory and selected as runner/file_select.h selects
//   them, so every file read lies inside the workspace (symlinks resolved). A plain file keeps
//   its base name; a directory uploads every file below it, keeping the path below it (as
//   `dir/**`); a glob keeps each match's path below the glob's fixed prefix (`cfn/**/*.yaml`
//   puts `cfn/a/b.yaml` at `a/b.yaml`). An entry that matches nothing, a glob holding `..`,
//   two files for one name, and a file named `manifest.json` at the top are errors before
//   anything is sent.
// - `part_size` takes B, K/KB/KiB, M/MB/MiB, G/GB/GiB, all binary (1 MB = 1 MiB, as the AWS
//   CLI reads them); 5 MiB to 5 GiB. Files up to part_size go up in one PUT, larger ones as
//   multipart uploads with up to `concurrency` parts in flight (default 8, 1 to 64); small
//   files go up `concurrency` at a time.
// - manifest.json (runner/manifest.h) is written last, so its presence means the upload is
//   complete. `source` is the file as listed, relative to the workspace.
// - A build is never published over another (SPEC section 4): a prefix that already holds a
//   manifest.json is refused before any object is sent (HEAD on S3, stat locally), and the
//   manifest is written with put-if-absent (S3 `If-None-Match: *`, a local hard link), so a
//   build racing another for one prefix fails instead of replacing its manifest. Objects
//   uploaded before such a race was lost stay beside the first build's (S3 has no
//   put-if-absent for multipart uploads here).
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

#include "runner/aws/s3_client.h"
#include "runner/result.h"
#include "runner/step_kind.h"

namespace runner {

// The step's configuration as Parse reads it; only used when Parse reported no error.
struct UploadOptions {
  std::string to;
  std::vector<std::string> files;
  std::string region;
  std::string endpoint;
  aws::PathStyle path_style = aws::PathStyle::kAuto;
  std::string sse;
  std::string kms_key_id;
  std::uint64_t part_size = 16 * aws::kMiB;
  int concurrency = 8;
  // `amis`: the AMIs the build baked (a packer step's artifact_id, REGION:AMI pairs), recorded
  // in the manifest for deploys to other regions (SPEC section 7).
  std::vector<std::pair<std::string, std::string>> amis;
};

class UploadKind : public TypedStepKind<UploadOptions> {
 public:
  std::string_view name() const override { return "upload"; }
  // Time to abort multipart uploads after a cancel.
  Duration default_kill_grace() const override { return std::chrono::seconds(30); }
  // Publishing is the effect of the build: never skipped.
  CacheUse cache_use() const override { return CacheUse::kNever; }
  // The AWS credentials it signs with.
  std::vector<std::string> secret_env() const override;

 protected:
  UploadOptions Parse(const ConfigNode& config, Diagnostics& diags) const override;
  Status Run(const UploadOptions& options, StepIo& io) const override;
};

// "16MiB", "5 MB", "1048576" as bytes (see above for the units).
Result<std::uint64_t> ParseByteSize(std::string_view text);

// A file to publish.
struct UploadSource {
  std::string path;    // absolute, symlinks resolved: what to read
  std::string name;    // the path below `to`
  std::string source;  // the file as listed, relative to the workspace (for the manifest)
};

// The files `patterns` select in `dir` (absolute, inside `workspace`; see above), in the order
// listed, each glob's or directory's matches sorted by path. A file listed twice is one source.
Result<std::vector<UploadSource>> CollectUploadSources(const std::vector<std::string>& patterns,
                                                       const std::string& dir,
                                                       const std::string& workspace);

}  // namespace runner
