// The `packer` step kind (SPEC section 6): runs `packer build -machine-readable`, streams
// Packer's human lines to the step log and turns its `artifact` lines into outputs
// (`artifact_id`, `artifacts`, `ami_id`, `ami_REGION`).
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

// The configuration of a packer step.
struct PackerConfig {
  std::string template_path;                              // as written
  std::vector<std::pair<std::string, std::string>> vars;  // in file order
  std::vector<std::string> var_files;
  std::vector<std::string> only;
  std::string region;  // empty: the first region's AMI is `ami_id`
};

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

// argv of `packer build -machine-readable -color=false [-var-file F]... [-only A,B] TEMPLATE`,
// with `template_path` and `var_files` as given (already resolved). It never holds a value of
// `vars`: a command line is visible to every user (`ps`), and a var may hold a secret. Vars
// reach Packer as PackerVarsVia says.
std::vector<std::string> PackerBuildCommand(const std::string& packer, const PackerConfig& config,
                                            const std::string& template_path,
                                            const std::vector<std::string>& var_files);

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

}  // namespace runner
