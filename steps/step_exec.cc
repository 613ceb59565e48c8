#include "steps/step_exec.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>

#include "runner/atomic_file.h"
#include "steps/step_kind.h"

namespace runner {

namespace {

using json = nlohmann::ordered_json;

volatile std::sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int signal) {
  if (g_stop_signal == 0) g_stop_signal = signal;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void AppendToFile(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  WriteAll(fd, data);
  ::close(fd);
}

class ChildStepIo : public StepIo {
 public:
  ChildStepIo(const Environment& env, std::string dir, BuildContext build)
      : env_(env), dir_(std::move(dir)), build_(std::move(build)) {
    output_path_ = Lookup(env_, "RUNNER_OUTPUT").value_or("");
    artifacts_path_ = Lookup(env_, kStepArtifactsVar).value_or("");
  }

  void Log(std::string_view text) override { WriteAll(STDOUT_FILENO, text); }

  void SetOutput(const std::string& name, const std::string& value) override {
    // A heredoc block carries any value, newlines included; the delimiter must not occur in it.
    std::mt19937_64 random(std::random_device{}());
    std::string delimiter;
    do {
      delimiter = "RUNNER_EOF_" + std::to_string(random());
    } while (value.find(delimiter) != std::string::npos);
    AppendToFile(output_path_, name + "<<" + delimiter + "\n" + value + "\n" + delimiter + "\n");
  }

  void AddArtifact(const Artifact& artifact) override {
    json line = {{"path", artifact.path},
                 {"size", artifact.size},
                 {"sha256", artifact.sha256},
                 {"url", artifact.url}};
    AppendToFile(artifacts_path_, line.dump() + "\n");
  }

  bool cancelled() const override { return g_stop_signal != 0; }
  const std::string& dir() const override { return dir_; }
  const std::string& workspace() const override { return build_.workspace; }
  const BuildContext& build() const override { return build_; }
  const Environment& env() const override { return env_; }

 private:
  const Environment& env_;
  std::string dir_;
  BuildContext build_;
  std::string output_path_;
  std::string artifacts_path_;
};

int FailStep(const Environment& env, const std::string& message) {
  WriteAll(STDOUT_FILENO, "error: " + message + "\n");
  if (auto path = Lookup(env, kStepErrorVar)) AppendToFile(*path, message);
  return 1;
}

}  // namespace

json StepRequest(const std::string& kind, const std::string& dir, const BuildContext& build,
                 const json& config) {
  json context = {{"project", build.project},    {"branch", build.branch},
                  {"commit", build.commit},      {"short_commit", build.short_commit},
                  {"number", build.number},      {"id", build.id},
                  {"event", build.event},        {"trigger", build.trigger},
                  {"workspace", build.workspace}};
  return {{"kind", kind}, {"dir", dir}, {"build", context}, {"config", config}};
}

int RunStepChild(const Environment& env) {
  // Told to stop, a built-in step finishes what it must (removing half-written files, letting
  // Packer clean up) instead of dying mid-write.
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);

  auto path = Lookup(env, kStepConfigVar);
  if (!path) return FailStep(env, std::string(kStepConfigVar) + " is not set: __step is internal");
  auto text = ReadFile(*path);
  if (!text) return FailStep(env, text.error());
  json request;
  BuildContext build;
  try {
    request = json::parse(*text);
    const json& context = request.at("build");
    build.project = context.at("project");
    build.branch = context.at("branch");
    build.commit = context.at("commit");
    build.short_commit = context.at("short_commit");
    build.number = context.at("number");
    build.id = context.at("id");
    build.event = context.at("event");
    build.trigger = context.at("trigger");
    build.workspace = context.at("workspace");
  } catch (const json::exception& e) {
    return FailStep(env, "bad step request " + *path + ": " + e.what());
  }
  std::string kind_name = request.value("kind", "");
  const StepKind* kind = FindStepKind(kind_name);
  if (!kind) return FailStep(env, "unknown step kind '" + kind_name + "'");
  ChildStepIo io(env, request.value("dir", build.workspace), build);
  Status status = kind->execute(request["config"], io);
  if (g_stop_signal != 0) return 128 + g_stop_signal;
  if (!status) return FailStep(env, status.error());
  return 0;
}

Result<std::vector<Artifact>> ReadStepArtifacts(const std::string& path) {
  std::vector<Artifact> artifacts;
  auto text = ReadFile(path);
  if (!text) return artifacts;  // a step that produced none never created the file
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    try {
      json entry = json::parse(line);
      artifacts.push_back(
          {entry.at("path"), entry.at("size"), entry.at("sha256"), entry.value("url", "")});
    } catch (const json::exception& e) {
      return Fail("bad artifact record in " + path + ": " + e.what());
    }
  }
  return artifacts;
}

}  // namespace runner
