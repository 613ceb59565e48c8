#include "runner/step_protocol.h"

#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <random>

#include "runner/atomic_file.h"
#include "runner/config_node.h"
#include "runner/fs.h"

namespace runner {

namespace {

using json = nlohmann::ordered_json;

void AppendToFile(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  (void)WriteAll(fd, data);  // a lost record shows as a missing output or artifact
  ::close(fd);
}

class ChildStepIo : public StepIo {
 public:
  ChildStepIo(const Environment& env, const StepRequest& request, ProcessRunner& processes)
      : env_(env),
        request_(request),
        processes_(processes),
        progress_(Lookup(env, kStepProgressVar).value_or("")) {
    output_path_ = Lookup(env_, "RUNNER_OUTPUT").value_or("");
    artifacts_path_ = Lookup(env_, kStepArtifactsVar).value_or("");
  }

  void Log(std::string_view text) override { (void)WriteAll(STDOUT_FILENO, text); }

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
    AppendToFile(artifacts_path_, line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
  }

  bool cancelled() const override { return processes_.received_signal() != 0; }
  const std::string& dir() const override { return request_.dir; }
  const std::string& workspace() const override { return request_.build.workspace; }
  const BuildContext& build() const override { return request_.build; }
  const Environment& env() const override { return env_; }
  const std::string& pipeline() const override { return request_.pipeline; }
  Duration kill_grace() const override { return request_.kill_grace; }
  ProcessRunner& processes() override { return processes_; }
  void ReportProgress(const Progress& progress) override { progress_.Update(progress); }

 private:
  const Environment& env_;
  const StepRequest& request_;
  ProcessRunner& processes_;
  std::string output_path_;
  std::string artifacts_path_;
  ProgressWriter progress_;
};

int FailStep(const Environment& env, const std::string& message) {
  (void)WriteAll(STDOUT_FILENO, "error: " + message + (message.ends_with('\n') ? "" : "\n"));
  if (auto path = Lookup(env, kStepErrorVar)) AppendToFile(*path, message);
  return 1;
}

}  // namespace

std::string EncodeStepRequest(const StepRequest& request) {
  json message = {{"kind", request.kind},
                  {"dir", request.dir},
                  {"pipeline", request.pipeline},
                  {"kill_grace_ms", request.kill_grace.count()},
                  {"build", BuildContextToJson(request.build)},
                  {"config", ConfigToJson(request.config)}};
  std::vector<std::uint8_t> bytes = json::to_msgpack(message);
  return std::string(bytes.begin(), bytes.end());
}

Result<StepRequest> DecodeStepRequest(std::string_view bytes) {
  StepRequest request;
  json message;
  try {
    message = json::from_msgpack(bytes);
    request.kind = message.at("kind");
    request.dir = message.at("dir");
    request.pipeline = message.at("pipeline");
    request.kill_grace = Duration(message.at("kill_grace_ms").get<Duration::rep>());
  } catch (const json::exception& e) {
    return Fail(std::string("bad step request: ") + e.what());
  }
  auto build = message.contains("build") ? BuildContextFromJson(message["build"])
                                         : Result<BuildContext>(Fail("no 'build'"));
  if (!build) return Fail("bad step request: " + build.error());
  request.build = std::move(*build);
  auto config = message.contains("config") ? ConfigFromJson(message["config"])
                                           : Result<ConfigNode>(Fail("no 'config'"));
  if (!config) return Fail("bad step request: " + config.error());
  request.config = std::move(*config);
  return request;
}

int RunStepChild(const Environment& env, const KindRegistry& kinds) {
  // From here on a SIGINT, SIGTERM or SIGHUP only sets the flag cancelled() reads: told to stop, a
  // step finishes what it must (removing half-written files, letting Packer clean up) instead of
  // dying mid-write.
  std::unique_ptr<ProcessRunner> processes = MakePosixProcessRunner();
  auto path = Lookup(env, kStepConfigVar);
  if (!path) return FailStep(env, std::string(kStepConfigVar) + " is not set: __step is internal");
  auto text = ReadFile(*path);
  if (!text) return FailStep(env, text.error());
  Result<StepRequest> request = DecodeStepRequest(*text);
  if (!request) return FailStep(env, request.error() + " (" + *path + ")");
  const StepKind* kind = kinds.Find(request->kind);
  if (!kind) return FailStep(env, "unknown step kind '" + request->kind + "'");
  ChildStepIo io(env, *request, *processes);
  Status status = kind->Execute(request->config, io);
  if (int signal = processes->received_signal(); signal != 0) return 128 + signal;
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
