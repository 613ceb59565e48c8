#include "runner/serve/build_job.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "runner/atomic_file.h"
#include "runner/build.h"
#include "runner/console.h"
#include "runner/environment.h"
#include "runner/fs.h"
#include "runner/process.h"

namespace runner::serve {

namespace {

using json = nlohmann::ordered_json;

constexpr int kExitUsage = 2;
constexpr size_t kMaxJobBytes = size_t{64} << 20;  // changed files of a huge push included

Result<std::string> StringField(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return Fail(fmt::format("build job: '{}' must be a string", name));
  }
  return it->get<std::string>();
}

}  // namespace

json BuildJobToJson(const BuildJob& job) {
  return {{"pipeline", job.pipeline},
          {"state_dir", job.state_dir},
          {"context", BuildContextToJson(job.context)},
          {"secret_env", job.secret_env},
          {"jobs", job.jobs}};
}

Result<BuildJob> BuildJobFromJson(const json& object) {
  if (!object.is_object()) return Fail("build job: expected a JSON object");
  BuildJob job;
  auto pipeline = StringField(object, "pipeline");
  if (!pipeline) return Fail(pipeline.error());
  job.pipeline = std::move(*pipeline);
  auto state_dir = StringField(object, "state_dir");
  if (!state_dir) return Fail(state_dir.error());
  job.state_dir = std::move(*state_dir);
  auto context = object.find("context");
  if (context == object.end()) return Fail("build job: missing 'context'");
  auto parsed = BuildContextFromJson(*context);
  if (!parsed) return Fail(parsed.error());
  job.context = std::move(*parsed);
  auto secrets = object.find("secret_env");
  if (secrets != object.end()) {
    if (!secrets->is_array()) return Fail("build job: 'secret_env' must be a list of names");
    for (const json& name : *secrets) {
      if (!name.is_string()) return Fail("build job: 'secret_env' must be a list of names");
      job.secret_env.push_back(name.get<std::string>());
    }
  }
  auto jobs = object.find("jobs");
  if (jobs != object.end()) {
    if (!jobs->is_number_integer() || jobs->get<int>() < 0) {
      return Fail("build job: 'jobs' must be a whole number");
    }
    job.jobs = jobs->get<int>();
  }
  return job;
}

Result<BuildJob> PrepareJob(GitMirror& mirror, const QueueEntry& entry, const RepoConfig& repo,
                            const std::string& worktree, const std::string& state_dir,
                            const std::function<bool()>& cancelled) {
  auto commit = mirror.ResolveCommit(entry.after, repo.token, FetchRetry{}, cancelled);
  if (!commit) return Fail(commit.error());
  auto changed = mirror.ChangedFiles(entry.before, *commit, entry.default_branch);
  if (!changed) return Fail(changed.error());
  if (std::filesystem::exists(worktree)) (void)RemoveWorktree(worktree);
  if (auto checked = mirror.CheckoutWorktree(*commit, worktree); !checked) {
    return Fail(checked.error());
  }
  BuildJob job;
  job.pipeline = worktree + "/" + repo.pipeline;
  job.state_dir = state_dir;
  BuildContext& context = job.context;
  context.project = entry.project;
  context.branch = entry.branch;
  context.commit = *commit;
  context.short_commit = commit->substr(0, 7);
  context.number = std::to_string(entry.number);
  context.id = entry.id;
  context.event = entry.event;
  context.trigger = entry.trigger;
  context.workspace = worktree;
  context.changed_files = std::move(*changed);
  if (auto time = mirror.CommitTime(*commit)) context.commit_time = *time;
  if (!repo.token_env.empty()) job.secret_env.push_back(repo.token_env);
  return job;
}

std::vector<std::string> BuildEnvironment(const ServeConfig& config,
                                          const Environment& environment) {
  std::vector<std::string> hidden = {config.admin_token_env};
  for (const RepoConfig& repo : config.repos) hidden.push_back(repo.secret_env);
  std::vector<std::string> out;
  for (const auto& [name, value] : environment) {
    if (std::ranges::find(hidden, name) == hidden.end()) out.push_back(name + "=" + value);
  }
  return out;
}

CommitStatus EntryCommitStatus(const QueueEntry& entry, std::string state, std::string_view what,
                               const std::string& base_url) {
  CommitStatus status;
  status.state = std::move(state);
  status.target_url = base_url + "/builds/" + entry.id;
  status.description = fmt::format("{} #{}: {}", entry.project, entry.number, what);
  status.context = "runner/" + entry.project;
  return status;
}

std::string CommitState(std::string_view result) {
  if (result == "success") return "success";
  if (result == "failed" || result == "timed_out") return "failure";
  return "error";
}

Status WriteBuildJob(const std::string& path, const BuildJob& job) {
  std::string text = BuildJobToJson(job).dump(1, ' ', false, json::error_handler_t::replace);
  if (auto written = WriteFileAtomic(path, text); !written) return written;
  if (::chmod(path.c_str(), 0600) != 0) {
    return Fail(fmt::format("cannot restrict {}: {}", path, ErrnoText(errno)));
  }
  return {};
}

int RunBuildJob(const std::string& job_file, const KindRegistry& kinds) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "runner: error: %s\n", message.c_str());
    return kExitUsage;
  };
  auto text = ReadFileAtMost(job_file, kMaxJobBytes);
  if (!text) return fail(text.error());
  json object = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return fail(fmt::format("{}: not valid JSON", job_file));
  auto job = BuildJobFromJson(object);
  if (!job) return fail(fmt::format("{}: {}", job_file, job.error()));

  BuildRequest request;
  request.pipeline = job->pipeline;
  request.context = job->context;
  request.state_dir = job->state_dir;
  request.jobs = job->jobs;
  request.environment = CurrentEnvironment();
  request.secret_env = job->secret_env;
  request.live_record = true;
  std::error_code ignored;
  request.self_exe = std::filesystem::read_symlink("/proc/self/exe", ignored).string();
  std::unique_ptr<ProcessRunner> processes = MakePosixProcessRunner(/*with_watchdog=*/true);
  Console console(stdout, /*terminal=*/false);
  auto record = RunBuild(request, kinds, *processes, console);
  std::fflush(stdout);
  if (!record) {
    std::fputs(record.error().diagnostics.c_str(), stderr);
    if (!record.error().message.empty()) return fail(record.error().message);
    return kExitUsage;
  }
  if (!record->records_error.empty()) {
    std::fprintf(stderr, "runner: error: %s\n", record->records_error.c_str());
  }
  return record->exit_code;
}

std::string NoRecordReason(int exit_code, const std::string& console_path) {
  constexpr size_t kMaxTail = 4096;
  auto text = ReadFile(console_path);
  std::string tail = "(no output)";
  if (text) {
    tail = text->size() > kMaxTail ? text->substr(text->size() - kMaxTail) : *text;
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  }
  return fmt::format("the build ended with exit code {} and no record: {}", exit_code, tail);
}

}  // namespace runner::serve
