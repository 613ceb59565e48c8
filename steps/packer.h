// The `packer` step kind (SPEC section 6): runs `packer build -machine-readable`, streams
// Packer's human lines to the step log and turns its `artifact` lines into outputs
// (`artifact_id`, `artifacts`, `ami_id`, `ami_REGION`).
//
// Bake skipping (SPEC section 8): `source_ami` is resolved with DescribeImages and pinned as
// `-var source_ami=ami-...`; the bake's key (BakeKey) covers every input of the bake. Each AMI
// a bake makes is tagged with the key (the tags below, in the AMI's region). Before baking, the
// AMIs with the key are looked for in the step's region (`region`, else the region the source
// AMI was resolved in): when the newest one's `runner:bake-regions` and `runner:bake-amis` say
// that every AMI of that bake is still available, Packer is not run and the outputs are the
// ones that bake had. `RUNNER_CACHE=off` (the step's `cache: false`) or `RUNNER_REBAKE` (`runner
// run --rebake`) in the step's environment bakes anyway, and still tags.
//
// Cancellation: Packer runs through the step's process supervision (StepIo::processes()) in
// the step's own process group (own_process_group = false), so the SIGINT or SIGTERM the runner
// sends to the step's group reaches Packer, its plugins and its provisioners' scripts once, the
// way a terminal's Ctrl-C would; Packer's wrapper process ignores a signal sent to its pid
// alone. Told of the signal by the supervision, the step keeps logging Packer's output until
// Packer and everything it left running (a provisioner's trap doing its cleanup) have exited,
// then fails with a "cancelled" message. The runner's kill_grace (10 minutes by default for
// this kind) bounds that wait with a SIGKILL to the group, which then takes Packer with it.
// The kind installs no signal handlers: the supervision owns the process's signals.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/environment.h"
#include "runner/result.h"
#include "runner/step_kind.h"

namespace runner {

// `source_ami: {owners: [...], filters: {name: "...", ...}}`: the most recent image of these
// owners that matches every filter (DescribeImages' filter names; a value may be a list).
struct SourceAmiQuery {
  std::vector<std::string> owners;
  std::vector<std::pair<std::string, std::vector<std::string>>> filters;  // in file order
};

// The configuration of a packer step.
struct PackerConfig {
  std::string template_path;                              // as written
  std::vector<std::pair<std::string, std::string>> vars;  // in file order
  std::vector<std::string> var_files;
  std::vector<std::string> only;
  std::string region;  // empty: the first region's AMI is `ami_id`
  std::optional<SourceAmiQuery> source_ami;
};

// The tags every AMI of a bake gets, in its region.
inline constexpr std::string_view kBakeKeyTag = "runner:bake-key";
inline constexpr std::string_view kBakeBuildTag = "runner:bake-build";  // the runner build's id
// Every region the bake made an AMI in, sorted, comma-joined; and how many AMIs it made.
inline constexpr std::string_view kBakeRegionsTag = "runner:bake-regions";
inline constexpr std::string_view kBakeAmisTag = "runner:bake-amis";
// The Packer build that made the AMI ("amazon-ebs.app") and the builder ids of its artifacts
// that hold it, in Packer's index order ("mitchellh.amazonebs,packer.post-processor.manifest").
inline constexpr std::string_view kBakePackerBuildTag = "runner:bake-packer-build";
inline constexpr std::string_view kBakeBuilderIdsTag = "runner:bake-builder-ids";

class PackerKind : public TypedStepKind<PackerConfig> {
 public:
  std::string_view name() const override { return "packer"; }
  // Packer must be let clean up what it created in AWS (SPEC section 5).
  Duration default_kill_grace() const override { return std::chrono::minutes(10); }
  // Bakes are cached through their AMIs' `runner:bake-key` tags (SPEC section 8).
  CacheUse cache_use() const override { return CacheUse::kOwn; }
  // Public for tests of the configuration alone.
  PackerConfig Parse(const ConfigNode& config, Diagnostics& diags) const override;

 protected:
  // REQUIRES: io.processes() is the process's one supervision (`runner __step` has it).
  Status Run(const PackerConfig& config, StepIo& io) const override;
};

// The Packer binary: `$PACKER` of `env` (a path, or a name looked up on PATH), else `packer`
// on the PATH of `env`. Relative paths are taken from `dir`. An error says how to get one.
Result<std::string> FindPacker(const Environment& env, const std::string& dir);

// argv of `packer build -machine-readable -color=false [-var-file F]... [-var
// source_ami=AMI] [-only A,B] TEMPLATE`, with `template_path` and `var_files` as given (already
// resolved) and the resolved `source_ami` when not empty (an AMI id is no secret, and last on
// the command line it wins over any var file). It never holds a value of `vars`: a command
// line is visible to every user (`ps`), and a var may hold a secret. Vars reach Packer as
// PackerVarsVia says.
std::vector<std::string> PackerBuildCommand(const std::string& packer, const PackerConfig& config,
                                            const std::string& template_path,
                                            const std::vector<std::string>& var_files,
                                            const std::string& source_ami);

// How `vars` reach Packer, by the template's syntax as Packer 1.6.6 decides it: for HCL2 (a
// directory, `*.pkr.hcl`, `*.pkr.json`) the environment, `PKR_VAR_name=value` (typed like
// `-var`); a legacy JSON template ignores PKR_VAR_, so for it a private JSON var file (mode
// 0600 in a 0700 directory, removed when Packer has exited), passed last so that it wins over
// `var_files` as `-var` would.
enum class PackerVarsVia { kEnvironment, kVarFile };
PackerVarsVia VarsViaFor(const std::string& template_path);

// A field of a machine-readable line as Packer meant it: `%!(PACKER_COMMA)` is a comma, the
// two characters `\n` a newline, `\r\n` a newline and a lone `\r` a newline too (progress
// output). Packer does not escape backslashes, so a literal `\n` in a message also becomes a
// newline.
std::string UnescapeMachineReadable(std::string_view field);

// One line of `packer -machine-readable` output: `timestamp,target,type,data...`.
struct MachineReadableLine {
  std::string timestamp;
  std::string target;             // the build's name; empty for `ui` lines
  std::string type;               // ui, artifact, artifact-count, error, error-count, ...
  std::vector<std::string> data;  // the remaining fields, unescaped
};

// `line` without its newline; nullopt when it is not in the machine-readable form (a Go
// panic, a plugin's stray print), which is then shown as it is.
std::optional<MachineReadableLine> ParseMachineReadableLine(std::string_view line);

// An artifact of one build, from its `artifact` lines.
struct PackerArtifact {
  std::string build;
  int index = 0;
  std::string builder_id;
  std::string id;
  std::string description;  // the `string` field
  std::vector<std::string> files;
};

// Splits a byte stream into lines in time linear in its size and memory bounded by
// kMaxLineBytes: a longer line is handed on in pieces of that size as they arrive, never kept
// whole. Not thread-safe.
class LineSplitter {
 public:
  static constexpr size_t kMaxLineBytes = 1 << 20;

  enum class Piece {
    kLine,      // a whole line, without its newline (or the unterminated last one)
    kPart,      // a part of an overlong line, more follows
    kLastPart,  // the end of an overlong line
  };
  // Calls `emit(text, piece)` for what `data` completes.
  template <class Emit>
  void Feed(std::string_view data, Emit&& emit) {
    while (!data.empty()) {
      size_t newline = data.find('\n');
      std::string_view chunk = data.substr(0, newline);
      data.remove_prefix(newline == std::string_view::npos ? data.size() : newline + 1);
      if (newline == std::string_view::npos) {
        Keep(chunk, emit);
      } else if (overlong_ || !partial_.empty() || chunk.size() > kMaxLineBytes) {
        Keep(chunk, emit);
        emit(std::string_view(partial_), overlong_ ? Piece::kLastPart : Piece::kLine);
        partial_.clear();
        overlong_ = false;
      } else {
        emit(chunk, Piece::kLine);
      }
    }
  }
  // At the end of the stream: the unterminated last line, if any.
  template <class Emit>
  void Finish(Emit&& emit) {
    if (partial_.empty() && !overlong_) return;
    emit(std::string_view(partial_), overlong_ ? Piece::kLastPart : Piece::kLine);
    partial_.clear();
    overlong_ = false;
  }

 private:
  template <class Emit>
  void Keep(std::string_view chunk, Emit& emit) {
    while (partial_.size() + chunk.size() > kMaxLineBytes) {
      size_t take = kMaxLineBytes - partial_.size();
      partial_.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      emit(std::string_view(partial_), Piece::kPart);
      partial_.clear();
      overlong_ = true;
    }
    partial_.append(chunk);
  }

  std::string partial_;
  bool overlong_ = false;  // parts of the current line were handed on already
};

// Consumes Packer's stdout as it streams: the human text to log, the artifacts, the errors.
// Linear in the output's size; a line longer than LineSplitter::kMaxLineBytes is logged in
// pieces as text, even when it starts like a machine-readable line. Not thread-safe.
class PackerOutputParser {
 public:
  // Bytes of stdout, in any pieces. Returns the log text of the complete lines among them:
  // `ui` messages unescaped, one per line; `error` lines (a build's error) as
  // "BUILD: error: TEXT"; lines not in the machine-readable form as they are; nothing for the
  // other machine-readable lines.
  std::string Feed(std::string_view data);
  // At the end of the stream: the log text of an unterminated last line.
  std::string Finish();

  // Every artifact in the order its first line appeared, duplicates and empty ids included.
  const std::vector<PackerArtifact>& artifacts() const { return artifacts_; }
  // The text of the last `ui,error` line, unescaped and trimmed; empty when there was none.
  const std::string& last_error() const { return last_error_; }
  // The text of every `ui,error` and `error` line, unescaped, in order.
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void Emit(std::string_view text, LineSplitter::Piece piece, std::string& log);
  std::string Line(std::string_view line);
  PackerArtifact& ArtifactAt(const std::string& build, int index);

  LineSplitter lines_;
  std::vector<PackerArtifact> artifacts_;
  std::string last_error_;
  std::vector<std::string> errors_;
};

// A hint for a failed build whose errors name a missing relative path ("stat scripts/x.sh: no
// such file or directory") that exists relative to the template's directory `template_dir`
// but not in `dir`, where Packer ran; nullopt when there is none.
std::optional<std::string> WorkingDirectoryHint(const std::vector<std::string>& errors,
                                                const std::string& dir,
                                                const std::string& template_dir);

// `artifacts` without those with an empty id and without repeats of an earlier one with the
// same build, builder id and id (a manifest post-processor repeats the build's artifact).
std::vector<PackerArtifact> DistinctArtifacts(const std::vector<PackerArtifact>& artifacts);

// The (region, AMI) pairs of an amazon-ebs artifact id such as
// `eu-west-1:ami-0a1b,us-east-1:ami-0c2d`, in order; nullopt when `id` is not such a list.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseAmiList(std::string_view id);

// The step's outputs from the artifacts of a successful build: `artifact_id` (the first
// artifact's id), `artifacts` (JSON list of {build, builder_id, id}) and, when ids are AMI
// lists, `ami_id` (the AMI in `region`, else the first pair's) and `ami_REGION` for every
// region (`ami_eu_west_1`; the first build's AMI when several builds made one in a region).
// "First" is in the order of build names, sorted (then each build's artifacts in Packer's
// index order), never in the order Packer printed them: parallel builds finish in any order,
// and the outputs must not change from run to run. Set `region` (or `only`) to pick another.
// An error when no artifact has an id, or `region` is set and no AMI was made there: an
// empty id is never passed on.
Result<std::vector<std::pair<std::string, std::string>>> PackerOutputs(
    const std::vector<PackerArtifact>& artifacts, const std::string& region);

// What a bake's key covers besides the configuration, as the run found it.
struct BakeInputs {
  std::string template_path;           // as Packer gets it: absolute, or relative to `dir`
  std::vector<std::string> var_files;  // the same
  std::string dir;                     // where Packer runs (absolute)
  std::string workspace;               // absolute
  std::string packer_version;          // `packer version`'s output
  std::string source_ami;              // the resolved source AMI; empty: none
};

// The bake's key: CacheKey("bake") over the template (its path as written and its content;
// for a directory, the name and content of every *.pkr.hcl, *.pkr.json and *.pkrvars.* file
// in it), each var file's path and content, every var's name and value (sorted by name) and,
// when the value names a regular file in the workspace (from `dir`, else the workspace), that
// file's content; `only`; the Packer version; the source AMI. Nothing else: not the build's
// number or id, not the region, not a file's mtime. An error names a file it cannot read.
Result<std::string> BakeKey(const PackerConfig& config, const BakeInputs& inputs);

// One AMI of a bake, as its tags describe it.
struct BakedAmi {
  std::string region;
  std::string ami;
  std::string packer_build;              // "amazon-ebs.app"
  std::vector<std::string> builder_ids;  // of the artifacts that hold it, in Packer's order
};

// The AMIs of a bake's artifacts (DistinctArtifacts), sorted by region and Packer build;
// nullopt when an artifact is not an AMI list (a `file` build's): such a bake's outputs cannot
// be rebuilt from AMIs alone, so it is never reused.
std::optional<std::vector<BakedAmi>> BakedAmisOf(const std::vector<PackerArtifact>& artifacts);

// The outputs the bake of `amis` had, as PackerOutputs gave them: each Packer build's
// artifacts, one per builder id, hold the sorted `region:ami` pairs of its AMIs (as Packer
// writes them).
Result<std::vector<std::pair<std::string, std::string>>> OutputsOfBake(
    const std::vector<BakedAmi>& amis, const std::string& region);

}  // namespace runner
