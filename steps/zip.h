// The `zip` step kind (SPEC section 6): a deterministic zip archive, optionally checked as a
// CodeDeploy revision.
//
// Archive contents:
// - `dest` is relative to the step's directory and must resolve inside the workspace after
//   symlinks: an absolute dest is a validation error, `../../x.zip` or a dest below a linked
//   directory that points out of the workspace a run-time error before anything is written.
// - `files` items are "src", {src: dest} or {src, dest}. Sources are relative to the step's
//   directory and must resolve inside the workspace. A src is a file, a directory (its whole
//   tree, empty directories included) or a glob (`*`, `?`, `[..]`, `**`; a glob selects
//   files only). Without a dest a source keeps its path as written (like `zip -r`). With a
//   dest: a file goes to dest, or under it when dest ends in `/`; a directory's contents and
//   a glob's matches (their path below the glob's fixed prefix) go under dest. A dest of
//   "", "." or "/" is the archive root.
// - `exclude` globs are matched against both the archive path and the source path (relative
//   to the step's directory) of every file and directory; a matching directory is skipped
//   with everything below it.
// - A symlink is followed: its target's content is stored under the link's name (a link to a
//   directory is walked as that directory). A link whose target lies outside the workspace,
//   a dangling link and a link loop are errors.
// - A walk never enters `.git` or `.runner` at the workspace root (file or directory, also
//   when reached through a symlink): `files: [.]` or `["**"]` leaves out Git's data and the
//   runner's default state directory (its records and local store). A step cannot know a
//   `--state-dir` elsewhere; one inside the workspace under another name is left out only by
//   `exclude`. Naming such a directory itself (`files: [.runner/store]`) still archives it.
// - The same file reached twice under one archive path (listed and matched by a glob) is one
//   entry; two different files for one archive path are an error.
//
// Determinism: entries sorted bytewise by archive path, every parent directory listed as an
// entry (0755), files 0644 or 0755 (the owner's exec bit), owner 0, no extra fields but zip64,
// every timestamp SOURCE_DATE_EPOCH (UTC, DOS precision) or 1980-01-01 when unset. Output
// bytes depend only on the inputs and `level`, never on thread count or timing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/environment.h"
#include "runner/result.h"
#include "runner/step_kind.h"

namespace runner {

struct ZipFileSpec {
  std::string src;
  std::optional<std::string> dest;
};

struct ZipOptions {
  std::string dest;
  std::vector<ZipFileSpec> files;
  std::vector<std::string> exclude;
  int level = 6;
  bool codedeploy = false;
};

// The `zip` kind. Its configuration: `dest` (the archive, relative to the step's directory),
// `files` (a non-empty list of the items above), `exclude` (a glob or a list of globs),
// `level` (0..9, default 6), `codedeploy` (true or false, default false).
class ZipKind : public TypedStepKind<ZipOptions> {
 public:
  std::string_view name() const override { return "zip"; }
  Duration default_kill_grace() const override { return std::chrono::seconds(10); }

  // Public so that tests read options as a step would.
  ZipOptions Parse(const ConfigNode& config, Diagnostics& diags) const override;

 protected:
  // Runs the whole step against `dir` and `workspace`: collect, write to a temporary file next
  // to dest, check as a CodeDeploy revision when asked, rename into place. On any error or
  // cancellation no file is left behind.
  Status Run(const ZipOptions& options, StepIo& io) const override;
};

// One entry of the archive.
struct ZipEntry {
  std::string archive_path;  // no leading or trailing '/'
  bool directory = false;
  bool executable = false;  // files: stored as 0755, else 0644
  std::string source;       // absolute path of the file read (after symlinks); files only
  std::string display;      // the source relative to the step's directory, for messages
  std::uint64_t size = 0;
};

// Resolves `options.files` against `dir` (absolute). Sources must lie inside `workspace`
// (absolute). `skip` (absolute, may be empty) is never included: the archive being written.
// Returns the entries sorted by archive path, parent directories added, or an error naming
// the source: missing source, glob matching nothing, two sources for one archive path, a file
// where a directory is also needed, symlink leaving the workspace, invalid archive path.
Result<std::vector<ZipEntry>> CollectZipEntries(const ZipOptions& options, const std::string& dir,
                                                const std::string& workspace,
                                                const std::string& skip);

// Seconds since the epoch for every entry's timestamp: SOURCE_DATE_EPOCH when set (an error
// when it is not a whole number), else 1980-01-01T00:00:00Z, the earliest DOS time.
Result<std::int64_t> ZipTimestamp(const Environment& env);

struct ZipWriteOptions {
  int level = 6;                   // 0 stores
  std::int64_t mtime = 315532800;  // seconds since the epoch, clamped to the DOS range
  int threads = 0;                 // 0: one per CPU
  // Larger files are deflated in independent pieces of this size, concatenated as one
  // deflate stream (see WriteZip). The bytes depend on it, never on `threads`.
  std::size_t chunk_size = 1 << 20;
  std::function<bool()> cancelled;  // polled; true stops the write with an error
};

struct ZipWriteStats {
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
};

// Writes `entries` (sorted, as CollectZipEntries returns them) as a zip archive to `fd`
// (empty, seekable, opened for writing) from offset 0. Files are read and deflated by worker
// threads, the archive written sequentially; memory stays bounded (a window of chunks).
// Deflate is libdeflate's (level 6 as its 5, the others as given), which compresses whole buffers
// only: every chunk is deflated on its own, and each but a file's last is then inflated block by
// block with zlib to find its final block, whose BFINAL bit is cleared, and its end bit, after
// which an empty stored block (a sync marker) ends it on a byte boundary. The pieces then
// concatenate into one valid stream, at the cost of one inflate per non-final chunk.
// Sizes above 4 GiB, offsets above 4 GiB and more than 65535 entries use zip64 records.
Result<ZipWriteStats> WriteZip(const std::vector<ZipEntry>& entries, const ZipWriteOptions& options,
                               int fd);

}  // namespace runner
