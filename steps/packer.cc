#include "steps/packer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "runner/aws/credentials.h"
#include "runner/aws/ec2.h"
#include "runner/aws/http.h"
#include "runner/aws/service_client.h"
#include "runner/cache/cache_key.h"
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

// NonEmptyList, and at least one item.
std::vector<std::string> AtLeastOne(const ConfigNode& node, std::string_view what,
                                    std::string_view hint, Diagnostics& diags) {
  std::vector<std::string> out = NonEmptyList(node, what, diags);
  if (out.empty() && node.type == ConfigNode::Type::kList) {
    diags.Error(node.where, fmt::format("'{}' is empty: {}", what, hint));
  }
  return out;
}

SourceAmiQuery ParseSourceAmi(const ConfigNode& node, Diagnostics& diags) {
  SourceAmiQuery out;
  if (!ExpectMap(node, "packer.source_ami", diags)) return out;
  CheckKeys(node, {"owners", "filters"}, "packer.source_ami", diags);
  if (const ConfigNode* owners = Require(node, "owners", "packer.source_ami", diags)) {
    out.owners = AtLeastOne(
        *owners, "packer.source_ami.owners",
        "name the accounts whose images may be used (self, amazon, an account id)", diags);
  }
  const ConfigNode* filters = Require(node, "filters", "packer.source_ami", diags);
  if (!filters || !ExpectMap(*filters, "packer.source_ami.filters", diags)) return out;
  if (filters->fields.empty()) {
    diags.Error(filters->where,
                "'packer.source_ami.filters' is empty: name at least one DescribeImages filter, "
                "such as name: \"debian-12-amd64-*\"");
  }
  for (const auto& [name, value] : filters->fields) {
    std::string what = "packer.source_ami.filters." + name;
    out.filters.emplace_back(name, AtLeastOne(value, what, "give the values to match", diags));
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

// Runs Packer to its end through the step's supervision, logging its stderr as it comes and
// what `stdout_log` makes of each piece of its stdout.
Result<RunResult> RunPacker(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env, StepIo& io,
                            const std::function<std::string(std::string_view)>& stdout_log) {
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
          log(event.stream == ProcessEvent::Stream::kStdout ? stdout_log(event.data)
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
  log(err.Finish());
  return result;
}

// The step's failure when the run was cancelled; nullopt when it was not.
std::optional<std::string> Cancelled(const RunResult& run) {
  if (!run.started) {
    return fmt::format("cancelled{} before Packer was started",
                       run.cancel_signal ? " by " + DescribeSignal(run.cancel_signal) : "");
  }
  if (run.cancel_signal != 0) {
    return fmt::format("cancelled by {}: Packer stopped its builds and exited with status {}",
                       DescribeSignal(run.cancel_signal), run.exit_code);
  }
  return std::nullopt;
}

// `packer version`'s output, trimmed: part of the bake's key.
Result<std::string> PackerVersion(const std::string& packer, const Environment& env, StepIo& io) {
  std::string out;
  auto run = RunPacker({packer, "version"}, ToEnvp(env), io, [&out](std::string_view data) {
    out.append(data);
    return std::string();
  });
  if (!run) return Fail(run.error());
  if (auto cancelled = Cancelled(*run)) return Fail(*cancelled);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (run->exit_code != 0 || out.empty()) {
    return Fail(fmt::format("`{} version` failed (exit status {}{}): is it Packer?", packer,
                            run->exit_code, out.empty() ? ", no output" : ""));
  }
  return out;
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

// ---------------------------------------------------------------------------------------
// AWS: the source AMI and earlier bakes.

// The EC2 clients of a step, one per region, made when first needed (a bake that uses no AMI
// never reaches for credentials), sharing one HTTP client and credentials chain.
class Ec2Clients {
 public:
  explicit Ec2Clients(StepIo& io) : io_(io) {}

  Result<aws::Ec2Client*> In(const std::string& region) {
    if (auto it = clients_.find(region); it != clients_.end()) return it->second.get();
    if (!connection_) connection_ = aws::ConnectAws(io_.env());
    aws::Ec2Options options;
    options.region = region;
    options.endpoint = aws::EndpointFromEnvironment(io_.env(), "EC2");
    options.log = [this](std::string_view line) { io_.Log(fmt::format("runner: {}\n", line)); };
    options.cancelled = [this] { return io_.cancelled(); };
    auto client =
        aws::Ec2Client::Create(*connection_->http, *connection_->credentials, std::move(options));
    if (!client) return Fail(client.error());
    return (clients_[region] = std::move(*client)).get();
  }

  Result<std::vector<aws::Ec2Image>> DescribeImages(const std::string& region,
                                                    const aws::DescribeImagesRequest& request) {
    auto ec2 = In(region);
    if (!ec2) return Fail(ec2.error());
    return (*ec2)->DescribeImages(request);
  }

 private:
  StepIo& io_;
  std::optional<aws::AwsConnection> connection_;
  std::map<std::string, std::unique_ptr<aws::Ec2Client>> clients_;
};

// The most recent image `query` finds in `region`, logged.
Result<std::string> ResolveSourceAmi(const SourceAmiQuery& query, const std::string& region,
                                     Ec2Clients& clients, StepIo& io) {
  aws::DescribeImagesRequest request;
  request.owners = query.owners;
  bool has_state = false;
  std::vector<std::string> shown;
  for (const auto& [name, values] : query.filters) {
    request.filters.push_back({name, values});
    has_state = has_state || name == "state";
    shown.push_back(fmt::format("{}={}", name, fmt::join(values, ",")));
  }
  // A pending or failed image cannot be launched.
  if (!has_state) {
    request.filters.push_back({"state", {"available"}});
    shown.push_back("state=available");
  }
  auto images = clients.DescribeImages(region, request);
  if (!images) return Fail(fmt::format("packer.source_ami: {}", images.error()));
  if (images->empty()) {
    return Fail(fmt::format(
        "packer.source_ami: no available image in {} of owners {} matches {}: check the "
        "filters, the owners and the region (packer.region, else AWS_REGION)",
        region, fmt::join(query.owners, ","), fmt::join(shown, ", ")));
  }
  const aws::Ec2Image& newest = *aws::MostRecent(*images);
  io.Log(fmt::format(
      "runner: source_ami: {} ({}, created {}), the most recent of {} image(s) in {} of owners "
      "{} matching {}\n",
      newest.id, newest.name, newest.creation_date, images->size(), region,
      fmt::join(query.owners, ","), fmt::join(shown, ", ")));
  return newest.id;
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    if (comma != 0) out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// DescribeImages of the available images of this account that carry the bake's key.
aws::DescribeImagesRequest BakeQuery(const std::string& key) {
  aws::DescribeImagesRequest request;
  request.owners = {"self"};
  request.filters = {{fmt::format("tag:{}", kBakeKeyTag), {key}}, {"state", {"available"}}};
  return request;
}

// An earlier bake with the key whose every AMI is available.
struct EarlierBake {
  std::vector<BakedAmi> amis;
  std::vector<std::string> builds;  // the runner builds that made them
};

// Looks for the bake with `key` from `home`: its newest AMI there says which regions it made
// AMIs in and how many; every one of them must be available. nullopt, with the reason logged,
// when it is not so.
Result<std::optional<EarlierBake>> FindEarlierBake(const std::string& key, const std::string& home,
                                                   Ec2Clients& clients, StepIo& io) {
  auto miss = [&io](const std::string& why) -> std::optional<EarlierBake> {
    io.Log(fmt::format("runner: {}: baking\n", why));
    return std::nullopt;
  };
  auto at_home = clients.DescribeImages(home, BakeQuery(key));
  if (!at_home) return Fail(at_home.error());
  if (at_home->empty()) {
    return miss(fmt::format("no available AMI in {} carries {} {}", home, kBakeKeyTag, key));
  }
  const aws::Ec2Image& newest = *aws::MostRecent(*at_home);
  std::vector<std::string> regions = SplitList(newest.Tag(kBakeRegionsTag));
  const std::string count_text = newest.Tag(kBakeAmisTag);
  size_t count = 0;
  auto [end, error] =
      std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
  if (regions.empty() || count == 0 || error != std::errc() ||
      end != count_text.data() + count_text.size()) {
    return miss(fmt::format("{} in {} carries {} but no valid {} and {} tags", newest.id, home,
                            kBakeKeyTag, kBakeRegionsTag, kBakeAmisTag));
  }
  // (region, Packer build) -> its AMIs: several builds may have made this bake (a --rebake, two
  // at once), and any complete one will do.
  std::map<std::pair<std::string, std::string>, std::vector<aws::Ec2Image>> found;
  for (const std::string& region : regions) {
    auto images = region == home ? Result<std::vector<aws::Ec2Image>>(*at_home)
                                 : clients.DescribeImages(region, BakeQuery(key));
    if (!images) return Fail(images.error());
    if (images->empty()) {
      return miss(
          fmt::format("the bake with {} {} made an AMI in {}, and none there is available any more",
                      kBakeKeyTag, key, region));
    }
    for (aws::Ec2Image& image : *images) {
      found[{region, image.Tag(kBakePackerBuildTag)}].push_back(std::move(image));
    }
  }
  if (found.size() != count) {
    return miss(fmt::format("{} of the {} AMIs of the bake with {} {} are available", found.size(),
                            count, kBakeKeyTag, key));
  }
  // One build's AMIs where a build made them all (the one with the newest AMI among those);
  // else, for each, the newest: every AMI with the key was baked from the same inputs.
  std::map<std::string, std::set<std::pair<std::string, std::string>>> covered;
  for (const auto& [where, images] : found) {
    for (const aws::Ec2Image& image : images) covered[image.Tag(kBakeBuildTag)].insert(where);
  }
  std::vector<aws::Ec2Image> complete;  // the newest AMI of each build that made them all
  for (const auto& [build, places] : covered) {
    if (places.size() != count) continue;
    std::vector<aws::Ec2Image> its;
    for (const auto& [where, images] : found) {
      std::ranges::copy_if(images, std::back_inserter(its), [&](const aws::Ec2Image& image) {
        return image.Tag(kBakeBuildTag) == build;
      });
    }
    complete.push_back(*aws::MostRecent(its));
  }
  const std::string newest_build =
      complete.empty() ? newest.Tag(kBakeBuildTag) : aws::MostRecent(complete)->Tag(kBakeBuildTag);
  EarlierBake bake;
  std::set<std::string> builds;
  for (const auto& [where, images] : found) {
    std::vector<aws::Ec2Image> same_build;
    std::copy_if(
        images.begin(), images.end(), std::back_inserter(same_build),
        [&](const aws::Ec2Image& image) { return image.Tag(kBakeBuildTag) == newest_build; });
    const aws::Ec2Image& image = *aws::MostRecent(same_build.empty() ? images : same_build);
    bake.amis.push_back(
        BakedAmi{where.first, image.id, where.second, SplitList(image.Tag(kBakeBuilderIdsTag))});
    std::string build = image.Tag(kBakeBuildTag);
    if (builds.insert(build).second) bake.builds.push_back(build.empty() ? "?" : build);
  }
  return bake;
}

// The longest value an EC2 tag holds.
constexpr size_t kMaxTagValue = 256;

// Tags each AMI of the bake in its region (see the tags in the header).
Status TagBake(const std::vector<BakedAmi>& amis, const std::string& key,
               const std::string& build_id, Ec2Clients& clients) {
  std::set<std::string> regions;
  for (const BakedAmi& ami : amis) regions.insert(ami.region);
  std::string region_list = fmt::format("{}", fmt::join(regions, ","));
  if (region_list.size() > kMaxTagValue) {
    return Fail(fmt::format("the {} regions of the bake do not fit in one tag", regions.size()));
  }
  for (const BakedAmi& ami : amis) {
    std::string builder_ids = fmt::format("{}", fmt::join(ami.builder_ids, ","));
    if (builder_ids.size() > kMaxTagValue) {
      return Fail(fmt::format("the builder ids of {} do not fit in one tag", ami.ami));
    }
    auto ec2 = clients.In(ami.region);
    if (!ec2) return Fail(ec2.error());
    Status tagged =
        (*ec2)->CreateTags({ami.ami}, {{std::string(kBakeKeyTag), key},
                                       {std::string(kBakeBuildTag), build_id},
                                       {std::string(kBakeRegionsTag), region_list},
                                       {std::string(kBakeAmisTag), std::to_string(amis.size())},
                                       {std::string(kBakePackerBuildTag), ami.packer_build},
                                       {std::string(kBakeBuilderIdsTag), builder_ids}});
    if (!tagged) return tagged;
  }
  return {};
}

std::string AmiList(const std::vector<BakedAmi>& amis) {
  std::vector<std::string> parts;
  for (const BakedAmi& ami : amis) parts.push_back(ami.region + ":" + ami.ami);
  return fmt::format("{}", fmt::join(parts, ", "));
}

// Why this step bakes whatever earlier bakes there are; nullopt when it may reuse one.
std::optional<std::string> RebakeReason(const Environment& env) {
  if (Lookup(env, "RUNNER_CACHE") == "off") return "the step's cache is off (cache: false)";
  if (auto rebake = Lookup(env, "RUNNER_REBAKE"); rebake && !rebake->empty() && *rebake != "0") {
    return "--rebake (RUNNER_REBAKE is set)";
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// The bake's key.

// The files of a directory template that Packer reads.
bool IsTemplateFile(std::string_view name) {
  return name.ends_with(".pkr.hcl") || name.ends_with(".pkr.json") ||
         name.ends_with(".pkrvars.hcl") || name.ends_with(".pkrvars.json");
}

Result<std::string> ContentDigest(const std::string& path) {
  auto digest = FileSha256Hex(path);
  if (!digest)
    return Fail(fmt::format("cannot read {} for the bake's key: {}", path, digest.error()));
  return digest;
}

// The regular file in the workspace that a var's value names (from `dir`, else the workspace);
// nullopt when it names none.
std::optional<std::string> FileNamedBy(const std::string& value, const std::string& dir,
                                       const std::string& workspace) {
  if (value.empty()) return std::nullopt;
  for (const std::string& base : {dir, workspace}) {
    std::string candidate = Join(base, value);
    struct stat st;
    if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto resolved = ResolveInWorkspace(candidate, "/", workspace);
    if (!resolved) return std::nullopt;
    return *resolved;
  }
  return std::nullopt;
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

  // The region earlier bakes are looked for in: where the AMI is built.
  Ec2Clients clients(io);
  std::string home = config.region;
  BakeInputs inputs{*template_path, var_files, io.dir(), io.workspace(), "", ""};
  if (config.source_ami) {
    if (home.empty()) home = aws::DefaultRegion(env);
    auto ami = ResolveSourceAmi(*config.source_ami, home, clients, io);
    if (!ami) return Fail(ami.error());
    inputs.source_ami = *ami;
  }
  auto version = PackerVersion(*packer, env, io);
  if (!version) return Fail(version.error());
  inputs.packer_version = *version;
  auto key = BakeKey(config, inputs);
  if (!key) return Fail(key.error());
  io.Log(fmt::format("runner: bake key {} ({})\n", *key, *version));

  if (auto reason = RebakeReason(env)) {
    io.Log(fmt::format("runner: baking whatever earlier bakes there are: {}\n", *reason));
  } else if (!home.empty()) {
    auto earlier = FindEarlierBake(*key, home, clients, io);
    if (!earlier) {
      if (io.cancelled()) return Fail("cancelled while looking for an earlier bake");
      io.Log(fmt::format("runner: warning: cannot look for an earlier bake ({}); baking\n",
                         earlier.error()));
    } else if (*earlier) {
      auto outputs = OutputsOfBake((*earlier)->amis, config.region);
      if (!outputs) return Fail(outputs.error());
      io.Log(fmt::format("runner: bake skipped: AMIs {} carry {} {} (built by {})\n",
                         AmiList((*earlier)->amis), kBakeKeyTag, *key,
                         fmt::join((*earlier)->builds, ", ")));
      for (const auto& [name, value] : *outputs) io.SetOutput(name, value);
      return {};
    }
  }

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
  std::vector<std::string> argv =
      PackerBuildCommand(*packer, config, *template_path, var_files, inputs.source_ami);

  std::string shown;
  for (const auto& arg : argv) shown += (shown.empty() ? "" : " ") + arg;
  io.Log("runner: " + shown + "\n");

  PackerOutputParser parser;
  io.ReportProgress(Progress{"baking", 0, 0});  // the console shows for how long
  auto run = RunPacker(argv, ToEnvp(env), io,
                       [&parser](std::string_view data) { return parser.Feed(data); });
  if (!run) return Fail(run.error());
  if (std::string rest = parser.Finish(); !rest.empty()) io.Log(rest);
  if (run->leftovers) {
    io.Log("runner: Packer left processes running; the runner will stop them\n");
  }
  if (auto cancelled = Cancelled(*run)) return Fail(*cancelled);
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

  if (auto baked = BakedAmisOf(parser.artifacts())) {
    if (Status tagged = TagBake(*baked, *key, io.build().id, clients); !tagged) {
      io.Log(fmt::format(
          "runner: warning: the AMIs were not tagged for reuse, so a later build bakes again: "
          "{}\n",
          tagged.error()));
    } else {
      io.Log(fmt::format("runner: tagged {} with {} {}\n", AmiList(*baked), kBakeKeyTag, *key));
      if (home.empty()) {
        io.Log(
            "runner: set packer.region (the region the AMI is built in) to let a later build "
            "reuse this bake\n");
      }
    }
  }
  return {};
}

Result<std::string> BakeKey(const PackerConfig& config, const BakeInputs& inputs) {
  CacheKey key("bake");
  key.Add("template", config.template_path);
  const std::string template_on_disk = Join(inputs.dir, inputs.template_path);
  if (IsDirectory(template_on_disk)) {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(template_on_disk, error)) {
      std::string name = entry.path().filename().string();
      if (IsTemplateFile(name) && entry.is_regular_file()) names.push_back(name);
    }
    if (error) {
      return Fail(
          fmt::format("cannot list {} for the bake's key: {}", template_on_disk, error.message()));
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      auto digest = ContentDigest(template_on_disk + "/" + name);
      if (!digest) return Fail(digest.error());
      key.Add("template-file", name);
      key.Add("template-file-sha256", *digest);
    }
  } else {
    auto digest = ContentDigest(template_on_disk);
    if (!digest) return Fail(digest.error());
    key.Add("template-sha256", *digest);
  }
  for (size_t i = 0; i < config.var_files.size() && i < inputs.var_files.size(); ++i) {
    auto digest = ContentDigest(Join(inputs.dir, inputs.var_files[i]));
    if (!digest) return Fail(digest.error());
    key.Add("var-file", config.var_files[i]);
    key.Add("var-file-sha256", *digest);
  }
  auto vars = config.vars;
  std::sort(vars.begin(), vars.end());
  for (const auto& [name, value] : vars) {
    key.Add("var", name);
    key.Add("var-value", value);
    if (auto file = FileNamedBy(value, inputs.dir, inputs.workspace)) {
      auto digest = ContentDigest(*file);
      if (!digest) return Fail(digest.error());
      key.Add("var-value-file-sha256", *digest);
    }
  }
  for (const std::string& name : config.only) key.Add("only", name);
  key.Add("packer-version", inputs.packer_version);
  key.Add("source-ami", inputs.source_ami);
  return key.FinishHex();
}

std::optional<std::vector<BakedAmi>> BakedAmisOf(const std::vector<PackerArtifact>& artifacts) {
  std::vector<PackerArtifact> distinct = DistinctArtifacts(artifacts);
  std::stable_sort(distinct.begin(), distinct.end(),
                   [](const PackerArtifact& a, const PackerArtifact& b) {
                     return std::tie(a.build, a.index) < std::tie(b.build, b.index);
                   });
  std::map<std::pair<std::string, std::string>, BakedAmi> amis;  // (region, build) ->
  for (const PackerArtifact& artifact : distinct) {
    auto pairs = ParseAmiList(artifact.id);
    if (!pairs) return std::nullopt;
    for (const auto& [region, id] : *pairs) {
      BakedAmi& ami = amis[{region, artifact.build}];
      if (ami.ami.empty()) ami = BakedAmi{region, id, artifact.build, {}};
      // Two AMIs of one build in one region: not what an AMI builder makes.
      if (ami.ami != id) return std::nullopt;
      if (std::find(ami.builder_ids.begin(), ami.builder_ids.end(), artifact.builder_id) ==
          ami.builder_ids.end()) {
        ami.builder_ids.push_back(artifact.builder_id);
      }
    }
  }
  if (amis.empty()) return std::nullopt;
  std::vector<BakedAmi> out;
  for (auto& [where, ami] : amis) out.push_back(std::move(ami));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> OutputsOfBake(
    const std::vector<BakedAmi>& amis, const std::string& region) {
  std::map<std::string, std::vector<const BakedAmi*>> builds;
  for (const BakedAmi& ami : amis) builds[ami.packer_build].push_back(&ami);
  std::vector<PackerArtifact> artifacts;
  for (const auto& [build, members] : builds) {
    std::vector<std::string> pairs;
    for (const BakedAmi* ami : members) pairs.push_back(ami->region + ":" + ami->ami);
    std::sort(pairs.begin(), pairs.end());
    std::string id = fmt::format("{}", fmt::join(pairs, ","));
    const std::vector<std::string>& builder_ids = members.front()->builder_ids;
    for (size_t i = 0; i < builder_ids.size(); ++i) {
      PackerArtifact artifact;
      artifact.build = build;
      artifact.index = static_cast<int>(i);
      artifact.builder_id = builder_ids[i];
      artifact.id = id;
      artifacts.push_back(std::move(artifact));
    }
  }
  return PackerOutputs(artifacts, region);
}

PackerConfig PackerKind::Parse(const ConfigNode& config, Diagnostics& diags) const {
  PackerConfig out;
  if (!ExpectMap(config, "packer", diags)) return out;
  CheckKeys(config, {"template", "vars", "var_files", "only", "region", "source_ami"}, "packer",
            diags);
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
      if (name == "source_ami" && config.Find("source_ami")) {
        diags.Error(where,
                    "'packer.vars.source_ami' and 'packer.source_ami' both set the source AMI: "
                    "keep one");
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
  if (const ConfigNode* node = config.Find("source_ami")) {
    out.source_ami = ParseSourceAmi(*node, diags);
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
                                            const std::vector<std::string>& var_files,
                                            const std::string& source_ami) {
  std::vector<std::string> argv = {packer, "build", "-machine-readable", "-color=false"};
  for (const auto& file : var_files) {
    argv.push_back("-var-file");
    argv.push_back(file);
  }
  if (!source_ami.empty()) {
    argv.push_back("-var");
    argv.push_back("source_ami=" + source_ami);
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
