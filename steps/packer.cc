#include "steps/packer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "runner/config_node.h"
#include "runner/fs.h"
#include "runner/process.h"
#include "runner/sha256.h"
#include "runner/spawn.h"
#include "runner/workspace_path.h"

// Why Packer shares the step's process group instead of getting one of its own (as the
// supervision gives a process by default): the runner's SIGKILL after the kill_grace, and its
// immediate SIGKILL on a second Ctrl-C, go to the step's group only. In a group of its own,
// Packer and the EC2 instance it is tearing down would outlive the runner. In the same group,
// every signal the runner sends reaches Packer exactly once, so this process never forwards one.

namespace runner {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kComma = "%!(PACKER_COMMA)";
constexpr size_t kMaxStatusErrorLength = 400;
// After Packer exits uncancelled, how long to wait for what it left running before leaving it
// to the runner (which terminates a step's leftovers).
constexpr auto kLeftoverWait = std::chrono::seconds(2);
// How long one Wait may take; any event ends it sooner.
constexpr auto kWaitSlice = std::chrono::seconds(1);

// ---------------------------------------------------------------------------------------
// Configuration.

bool IsAmiRegion(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// A scalar or a list of scalars, none empty.
std::vector<std::string> NonEmptyList(const ConfigNode& node, std::string_view what,
                                      Diagnostics& diags) {
  std::vector<std::string> out;
  auto items = ExpectScalarOrList(node, what, diags);
  if (!items) return out;
  for (const ConfigNode* item : *items) {
    if (item->scalar.text.empty()) diags.Error(item->where, fmt::format("'{}' is empty", what));
    out.push_back(item->scalar.text);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Files and the binary.

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Join(const std::string& dir, const std::string& path) {
  if (path.starts_with('/') || dir.empty()) return path;
  return dir + "/" + path;
}

// Where Packer (run in the step's dir) finds `path`: as written when it exists relative to the
// step's dir, so that Packer's messages show the name the user wrote; else the path in the
// workspace, where a pipeline's paths are usually written from.
Result<std::string> ResolveInput(const std::string& path, std::string_view what, StepIo& io) {
  if (Exists(Join(io.dir(), path))) return path;
  if (path.starts_with('/')) return Fail(fmt::format("packer.{} '{}' does not exist", what, path));
  std::string in_workspace = Join(io.workspace(), path);
  if (Exists(in_workspace)) return in_workspace;
  return Fail(fmt::format("packer.{} '{}' does not exist (looked in {}{})", what, path, io.dir(),
                          io.dir() == io.workspace() ? "" : " and " + io.workspace()));
}

// Complete lines of a stream as they are, for stderr (so that its lines do not split Packer's).
class LineBuffer {
 public:
  std::string Feed(std::string_view data) {
    std::string out;
    lines_.Feed(data, [&out](std::string_view text, LineSplitter::Piece piece) {
      Append(text, piece, out);
    });
    return out;
  }
  std::string Finish() {
    std::string out;
    lines_.Finish(
        [&out](std::string_view text, LineSplitter::Piece piece) { Append(text, piece, out); });
    return out;
  }

 private:
  static void Append(std::string_view text, LineSplitter::Piece piece, std::string& out) {
    out.append(text);
    if (piece != LineSplitter::Piece::kPart) out.push_back('\n');
  }

  LineSplitter lines_;
};

// A private file for the values of a legacy JSON template's vars (see PackerVarsVia), removed
// with its directory when this goes.
class PrivateVarFile {
 public:
  PrivateVarFile() = default;
  PrivateVarFile(const PrivateVarFile&) = delete;
  PrivateVarFile& operator=(const PrivateVarFile&) = delete;
  ~PrivateVarFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }

  // Writes `content` to a new 0600 file in a new 0700 directory under TMPDIR (else /tmp).
  Status Write(const Environment& env, const std::string& content) {
    std::string base = Lookup(env, "TMPDIR").value_or("");
    std::string pattern = (base.empty() ? std::string("/tmp") : base) + "/runner-packer-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Fail(fmt::format("cannot make a private directory for the Packer vars ({}): {}",
                              pattern, ErrnoText(errno)));
    }
    dir_ = pattern;
    std::string path = dir_ + "/vars.json";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(fmt::format("cannot create {}: {}", path, ErrnoText(errno)));
    path_ = path;
    Status written = WriteAll(fd, content);
    ::close(fd);
    if (!written) return Fail(fmt::format("cannot write {}: {}", path, written.error()));
    return {};
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

struct RunResult {
  bool started = true;  // false: cancelled before Packer was started
  int exit_code = 0;
  int cancel_signal = 0;   // the first SIGINT/SIGTERM received, or 0
  bool leftovers = false;  // children still running when we stopped waiting
};

// Runs Packer to its end through the step's supervision, logging its output as it comes.
Result<RunResult> RunPacker(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env, StepIo& io,
                            PackerOutputParser& out) {
  ProcessRunner& processes = io.processes();
  if (io.cancelled())
    return RunResult{.started = false, .cancel_signal = processes.received_signal()};
  // Not a group of its own: see the top of the file. The supervision then waits for what
  // Packer leaves running, without a bound once cancelled; kLeftoverWait otherwise.
  Result<int> id = processes.Start({.argv = argv,
                                    .env = env,
                                    .cwd = io.dir(),
                                    .kill_grace = kLeftoverWait,
                                    .own_process_group = false,
                                    .separate_stderr = true});
  if (!id) {
    // Refused: a signal came before Packer existed to get it.
    if (int sig = processes.received_signal()) {
      return RunResult{.started = false, .cancel_signal = sig};
    }
    return Fail(id.error());
  }

  LineBuffer err;
  RunResult result;
  auto log = [&io](const std::string& text) {
    if (!text.empty()) io.Log(text);
  };
  bool done = false;
  while (!done) {
    for (const ProcessEvent& event : processes.Wait(Clock::now() + kWaitSlice)) {
      switch (event.type) {
        case ProcessEvent::Type::kSignal:
          if (result.cancel_signal == 0) {
            result.cancel_signal = event.signal;
            log(fmt::format("runner: {} received: Packer got it too; waiting for it to clean up\n",
                            DescribeSignal(event.signal)));
          } else {
            log(fmt::format("runner: {} received again; still waiting for Packer\n",
                            DescribeSignal(event.signal)));
          }
          break;
        case ProcessEvent::Type::kOutput:
          if (event.id != *id) break;
          log(event.stream == ProcessEvent::Stream::kStdout ? out.Feed(event.data)
                                                            : err.Feed(event.data));
          break;
        case ProcessEvent::Type::kDone:
          if (event.id != *id) break;
          result.exit_code = event.exit_code;
          result.leftovers = event.left_running;
          done = true;
          break;
      }
    }
  }
  log(out.Finish());
  log(err.Finish());
  return result;
}

// One line of an error message for the step's status: Packer's errors span lines.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (out.size() > kMaxStatusErrorLength) out = out.substr(0, kMaxStatusErrorLength) + "...";
  return out;
}

// The local files of the artifacts (a `file` or `qemu` builder's output), for the report.
void AddFileArtifacts(const std::vector<PackerArtifact>& artifacts, StepIo& io) {
  std::set<std::string> seen;
  for (const auto& artifact : artifacts) {
    for (const auto& file : artifact.files) {
      std::string path = Join(io.dir(), file);
      struct stat st;
      if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      std::string shown = WorkspaceRelative(path, io.workspace());
      if (!seen.insert(shown).second) continue;
      auto digest = FileSha256Hex(path);
      if (!digest) continue;
      io.AddArtifact(Artifact{shown, static_cast<std::uint64_t>(st.st_size), *digest, ""});
    }
  }
}

}  // namespace

Status PackerKind::Run(const PackerConfig& config, StepIo& io) const {
  auto template_path = ResolveInput(config.template_path, "template", io);
  if (!template_path) return Fail(template_path.error());
  std::vector<std::string> var_files;
  for (const auto& file : config.var_files) {
    auto resolved = ResolveInput(file, "var_files", io);
    if (!resolved) return Fail(resolved.error());
    var_files.push_back(*resolved);
  }
  auto packer = FindPacker(io.env(), io.dir());
  if (!packer) return Fail(packer.error());

  Environment env = io.env();
  // Packer otherwise asks checkpoint.hashicorp.com for news on every run; a build host may
  // well be offline.
  env.try_emplace("CHECKPOINT_DISABLE", "1");
  // Never on the command line: see PackerVarsVia.
  PrivateVarFile vars_file;
  if (!config.vars.empty()) {
    if (VarsViaFor(Join(io.dir(), *template_path)) == PackerVarsVia::kEnvironment) {
      for (const auto& [name, value] : config.vars) env["PKR_VAR_" + name] = value;
    } else {
      nlohmann::json values = nlohmann::json::object();
      for (const auto& [name, value] : config.vars) values[name] = value;
      Status written = vars_file.Write(
          env, values.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      if (!written) return Fail(written.error());
      var_files.push_back(vars_file.path());
    }
  }
  std::vector<std::string> argv = PackerBuildCommand(*packer, config, *template_path, var_files);

  std::string shown;
  for (const auto& arg : argv) shown += (shown.empty() ? "" : " ") + arg;
  io.Log("runner: " + shown + "\n");

  PackerOutputParser parser;
  io.ReportProgress(Progress{"baking", 0, 0});  // the console shows for how long
  auto run = RunPacker(argv, ToEnvp(env), io, parser);
  if (!run) return Fail(run.error());
  if (run->leftovers) {
    io.Log("runner: Packer left processes running; the runner will stop them\n");
  }
  if (!run->started) {
    return Fail(fmt::format("cancelled{} before Packer was started",
                            run->cancel_signal ? " by " + DescribeSignal(run->cancel_signal) : ""));
  }
  if (run->cancel_signal != 0) {
    return Fail(fmt::format("cancelled by {}: Packer stopped its builds and exited with status {}",
                            DescribeSignal(run->cancel_signal), run->exit_code));
  }
  // Packer 1.6.6 exits 0 when a build fails to prepare (a missing script): look at every run.
  std::string template_on_disk = Join(io.dir(), *template_path);
  std::string template_dir = IsDirectory(template_on_disk)
                                 ? template_on_disk
                                 : std::filesystem::path(template_on_disk).parent_path().string();
  if (auto hint = WorkingDirectoryHint(parser.errors(), io.dir(), template_dir)) {
    io.Log("runner: hint: " + *hint + "\n");
  }
  if (run->exit_code != 0) {
    std::string reason = parser.last_error().empty() ? std::string("see the log above")
                                                     : OneLine(parser.last_error());
    if (run->exit_code > 128) {
      return Fail(
          fmt::format("packer was killed by {}: {}", DescribeSignal(run->exit_code - 128), reason));
    }
    return Fail(fmt::format("packer build failed (exit status {}): {}", run->exit_code, reason));
  }
  auto outputs = PackerOutputs(parser.artifacts(), config.region);
  if (!outputs) return Fail(outputs.error());
  for (const auto& [name, value] : *outputs) io.SetOutput(name, value);
  AddFileArtifacts(parser.artifacts(), io);
  return {};
}

PackerConfig PackerKind::Parse(const ConfigNode& config, Diagnostics& diags) const {
  PackerConfig out;
  if (!ExpectMap(config, "packer", diags)) return out;
  CheckKeys(config, {"template", "vars", "var_files", "only", "region"}, "packer", diags);
  if (const ConfigNode* node = Require(config, "template", "packer", diags)) {
    if (ExpectScalar(*node, "packer.template", diags) && node->scalar.text.empty()) {
      diags.Error(node->where, "'packer.template' is empty: name a template file or directory");
    }
    out.template_path = node->scalar.text;
  }
  if (const ConfigNode* vars = config.Find("vars");
      vars && ExpectMap(*vars, "packer.vars", diags)) {
    for (size_t i = 0; i < vars->fields.size(); ++i) {
      const auto& [name, value] = vars->fields[i];
      SourceLocation where = i < vars->key_locations.size() ? vars->key_locations[i] : vars->where;
      if (name.empty() || name.find('=') != std::string::npos) {
        diags.Error(where, fmt::format("'{}' is not a Packer variable name", name));
      }
      if (ExpectScalar(value, "packer.vars." + name, diags)) {
        out.vars.emplace_back(name, value.scalar.text);
      }
    }
  }
  if (const ConfigNode* node = config.Find("var_files")) {
    out.var_files = NonEmptyList(*node, "packer.var_files", diags);
  }
  if (const ConfigNode* node = config.Find("only")) {
    out.only = NonEmptyList(*node, "packer.only", diags);
  }
  if (const ConfigNode* node = config.Find("region");
      node && ExpectScalar(*node, "packer.region", diags)) {
    out.region = node->scalar.text;
    if (IsKnown(*node) && !IsAmiRegion(out.region)) {
      diags.Error(node->where,
                  fmt::format("'packer.region' must be an AWS region such as eu-west-1, got '{}'",
                              out.region));
    }
  }
  return out;
}

Result<std::string> FindPacker(const Environment& env, const std::string& dir) {
  constexpr std::string_view kHowTo = "install it (apt-get install packer) or set PACKER";
  std::optional<std::string> from_env = Lookup(env, "PACKER");
  if (from_env && from_env->empty()) from_env.reset();
  Result<std::string> found = FindProgram(from_env.value_or("packer"), Lookup(env, "PATH"), dir);
  if (!found) {
    return Fail(fmt::format("packer not found: {}{}; {}",
                            from_env ? "PACKER=" + *from_env + ": " : "", found.error(), kHowTo));
  }
  return Join(dir, *found);
}

std::vector<std::string> PackerBuildCommand(const std::string& packer, const PackerConfig& config,
                                            const std::string& template_path,
                                            const std::vector<std::string>& var_files) {
  std::vector<std::string> argv = {packer, "build", "-machine-readable", "-color=false"};
  for (const auto& file : var_files) {
    argv.push_back("-var-file");
    argv.push_back(file);
  }
  if (!config.only.empty()) {
    std::string only;
    for (const auto& name : config.only) only += (only.empty() ? "" : ",") + name;
    argv.push_back("-only");
    argv.push_back(only);
  }
  argv.push_back(template_path);
  return argv;
}

PackerVarsVia VarsViaFor(const std::string& template_path) {
  if (IsDirectory(template_path) || template_path.ends_with(".pkr.hcl") ||
      template_path.ends_with(".pkr.json")) {
    return PackerVarsVia::kEnvironment;
  }
  return PackerVarsVia::kVarFile;
}

std::optional<std::string> WorkingDirectoryHint(const std::vector<std::string>& errors,
                                                const std::string& dir,
                                                const std::string& template_dir) {
  // Go's os.PathError text: "stat PATH: no such file or directory" (also open, lstat).
  // Packer wraps long lines, so any run of spaces may be a newline.
  static const RE2 kMissing(
      R"((?:stat|lstat|open)\s+([^\s:'"]+):\s+no\s+such\s+file\s+or\s+directory)");
  for (const std::string& error : errors) {
    re2::StringPiece input(error);
    std::string path;
    while (RE2::FindAndConsume(&input, kMissing, &path)) {
      if (path.starts_with('/') || Exists(Join(dir, path))) continue;
      std::string beside_template = Join(template_dir, path);
      if (!Exists(beside_template)) continue;
      return fmt::format(
          "'{}' is not in {}, where Packer runs (the step's directory), but {} exists: Packer "
          "resolves a template's relative paths from its working directory; write "
          "\"{{{{template_dir}}}}/{}\" (JSON) or \"${{path.root}}/{}\" (HCL2), or set the step's "
          "'dir'",
          path, dir, beside_template, path, path);
    }
  }
  return std::nullopt;
}

std::string UnescapeMachineReadable(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size();) {
    if (field.substr(i).starts_with(kComma)) {
      out.push_back(',');
      i += kComma.size();
    } else if (field.substr(i).starts_with("\\r\\n")) {
      out.push_back('\n');
      i += 4;
    } else if (field.substr(i).starts_with("\\n") || field.substr(i).starts_with("\\r")) {
      out.push_back('\n');
      i += 2;
    } else {
      out.push_back(field[i]);
      ++i;
    }
  }
  return out;
}

std::optional<MachineReadableLine> ParseMachineReadableLine(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  std::vector<std::string_view> fields;
  size_t begin = 0;
  while (true) {
    size_t end = line.find(',', begin);
    fields.push_back(line.substr(begin, end == std::string_view::npos ? end : end - begin));
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  if (fields.size() < 3 || fields[0].empty() || fields[2].empty()) return std::nullopt;
  if (!std::all_of(fields[0].begin(), fields[0].end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  MachineReadableLine out;
  out.timestamp = fields[0];
  out.target = UnescapeMachineReadable(fields[1]);
  out.type = fields[2];
  for (size_t i = 3; i < fields.size(); ++i) out.data.push_back(UnescapeMachineReadable(fields[i]));
  return out;
}

std::string PackerOutputParser::Feed(std::string_view data) {
  std::string log;
  lines_.Feed(data,
              [&](std::string_view text, LineSplitter::Piece piece) { Emit(text, piece, log); });
  return log;
}

std::string PackerOutputParser::Finish() {
  std::string log;
  lines_.Finish([&](std::string_view text, LineSplitter::Piece piece) { Emit(text, piece, log); });
  return log;
}

void PackerOutputParser::Emit(std::string_view text, LineSplitter::Piece piece, std::string& log) {
  switch (piece) {
    case LineSplitter::Piece::kLine:
      log += Line(text);
      break;
    case LineSplitter::Piece::kPart:
      log.append(text);
      break;
    case LineSplitter::Piece::kLastPart:
      log.append(text);
      log.push_back('\n');
      break;
  }
}

PackerArtifact& PackerOutputParser::ArtifactAt(const std::string& build, int index) {
  for (auto& artifact : artifacts_) {
    if (artifact.build == build && artifact.index == index) return artifact;
  }
  PackerArtifact& artifact = artifacts_.emplace_back();
  artifact.build = build;
  artifact.index = index;
  return artifact;
}

std::string PackerOutputParser::Line(std::string_view line) {
  auto parsed = ParseMachineReadableLine(line);
  if (!parsed) {
    if (line.empty()) return {};
    return std::string(line) + "\n";
  }
  if (parsed->type == "ui") {
    // `ui,KIND,TEXT`; a comma Packer failed to escape would split TEXT: join it back.
    std::string text;
    for (size_t i = 1; i < parsed->data.size(); ++i) {
      text += (i > 1 ? "," : "") + parsed->data[i];
    }
    while (text.ends_with('\n')) text.pop_back();
    if (!parsed->data.empty() && parsed->data[0] == "error") {
      size_t first = text.find_first_not_of('\n');
      last_error_ = first == std::string::npos ? std::string() : text.substr(first);
      errors_.push_back(text);
    }
    return text + "\n";
  }
  if (parsed->type == "error") {
    // `BUILD,error,TEXT`: a build's error, which Packer may not repeat as a `ui` line.
    std::string text;
    for (size_t i = 0; i < parsed->data.size(); ++i) text += (i > 0 ? "," : "") + parsed->data[i];
    while (text.ends_with('\n')) text.pop_back();
    errors_.push_back(text);
    return fmt::format("{}{}error: {}\n", parsed->target, parsed->target.empty() ? "" : ": ", text);
  }
  if (parsed->type == "artifact" && parsed->data.size() >= 2) {
    int index = 0;
    const std::string& number = parsed->data[0];
    if (number.empty() ||
        !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        number.size() > 6) {
      return {};
    }
    index = std::stoi(number);
    PackerArtifact& artifact = ArtifactAt(parsed->target, index);
    const std::string& key = parsed->data[1];
    std::string value = parsed->data.size() >= 3 ? parsed->data[2] : std::string();
    if (key == "builder-id") {
      artifact.builder_id = value;
    } else if (key == "id") {
      artifact.id = value;
    } else if (key == "string") {
      artifact.description = value;
    } else if (key == "file" && parsed->data.size() >= 4) {
      artifact.files.push_back(parsed->data[3]);
    }
  }
  return {};
}

std::vector<PackerArtifact> DistinctArtifacts(const std::vector<PackerArtifact>& artifacts) {
  std::vector<PackerArtifact> out;
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const auto& artifact : artifacts) {
    if (artifact.id.empty()) continue;
    if (!seen.emplace(artifact.build, artifact.builder_id, artifact.id).second) continue;
    out.push_back(artifact);
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseAmiList(std::string_view id) {
  std::vector<std::pair<std::string, std::string>> out;
  if (id.empty()) return std::nullopt;
  size_t begin = 0;
  while (true) {
    size_t end = id.find(',', begin);
    std::string_view pair = id.substr(begin, end == std::string_view::npos ? end : end - begin);
    while (pair.starts_with(' ')) pair.remove_prefix(1);
    while (pair.ends_with(' ')) pair.remove_suffix(1);
    size_t colon = pair.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view region = pair.substr(0, colon);
    std::string_view ami = pair.substr(colon + 1);
    if (!IsAmiRegion(region) || !ami.starts_with("ami-") || ami.size() == 4) return std::nullopt;
    if (!std::all_of(ami.begin() + 4, ami.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        })) {
      return std::nullopt;
    }
    out.emplace_back(region, ami);
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> PackerOutputs(
    const std::vector<PackerArtifact>& artifacts, const std::string& region) {
  std::vector<PackerArtifact> distinct = DistinctArtifacts(artifacts);
  // Not Packer's order, which changes from run to run: see the header.
  std::stable_sort(distinct.begin(), distinct.end(),
                   [](const PackerArtifact& a, const PackerArtifact& b) {
                     return std::tie(a.build, a.index) < std::tie(b.build, b.index);
                   });
  if (distinct.empty()) {
    return Fail(
        "packer build produced no artifact id: check that the template's builders ran (a wrong "
        "'only' builds nothing) and that no post-processor discards the build's artifact");
  }
  std::vector<std::pair<std::string, std::string>> outputs;
  outputs.emplace_back("artifact_id", distinct.front().id);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& artifact : distinct) {
    list.push_back(
        {{"build", artifact.build}, {"builder_id", artifact.builder_id}, {"id", artifact.id}});
  }
  outputs.emplace_back("artifacts",
                       list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));

  // region -> AMI, first build first.
  std::vector<std::pair<std::string, std::string>> amis;
  for (const auto& artifact : distinct) {
    auto pairs = ParseAmiList(artifact.id);
    if (!pairs) continue;
    for (const auto& [where, ami] : *pairs) {
      bool known = std::any_of(amis.begin(), amis.end(),
                               [&](const auto& entry) { return entry.first == where; });
      if (!known) amis.emplace_back(where, ami);
    }
  }
  if (!region.empty()) {
    auto it = std::find_if(amis.begin(), amis.end(),
                           [&](const auto& entry) { return entry.first == region; });
    if (it == amis.end()) {
      std::string made;
      for (const auto& [where, ami] : amis) made += (made.empty() ? "" : ", ") + where;
      return Fail(fmt::format("packer.region is '{}' but the build made no AMI there ({})", region,
                              made.empty() ? "it made no AMI at all" : "AMIs in: " + made));
    }
    outputs.emplace_back("ami_id", it->second);
  } else if (!amis.empty()) {
    outputs.emplace_back("ami_id", amis.front().second);
  }
  for (const auto& [where, ami] : amis) {
    std::string name = "ami_" + where;
    std::replace(name.begin(), name.end(), '-', '_');
    outputs.emplace_back(name, ami);
  }
  return outputs;
}

}  // namespace runner
