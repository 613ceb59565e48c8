// moto (the AWS emulator: `moto_server -H 127.0.0.1 -p PORT` serves every service on one port,
// accepts any credentials and checks no signature) for the tests of the AWS clients. Each test
// of a MotoServerTest fixture gets a server of its own on a free port of 127.0.0.1, in its own
// process group, stopped (SIGTERM, then SIGKILL) and reaped when the test ends. Where
// moto_server is not installed the tests are skipped, saying so on stderr and in the skip
// message.
//
//   class CloudFormationMotoTest : public runner::testing::MotoServerTest {};
//   TEST_F(CloudFormationMotoTest, X) { options.endpoint = moto().endpoint(); ... }
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runner/aws/aws_client.h"
#include "runner/spawn.h"
#include "tests/test_util.h"

extern char** environ;

namespace runner::testing {

// Where moto_server is: the pip Pythons' own bin directories under pyenv first (a pyenv shim
// on PATH picks its Python by the working directory, which may lack moto), then PATH. nullopt
// when it is nowhere.
inline std::optional<std::string> FindMotoServer() {
  std::vector<std::string> roots;
  if (const char* root = ::getenv("PYENV_ROOT")) roots.emplace_back(root);
  if (const char* home = ::getenv("HOME")) roots.push_back(std::string(home) + "/.pyenv");
  for (const std::string& root : roots) {
    glob_t found{};
    const std::string pattern = root + "/versions/*/bin/moto_server";
    if (::glob(pattern.c_str(), 0, nullptr, &found) == 0) {
      std::string path = found.gl_pathv[found.gl_pathc - 1];  // the newest Python
      ::globfree(&found);
      return path;
    }
    ::globfree(&found);
  }
  const char* path = ::getenv("PATH");
  Result<std::string> program =
      FindProgram("moto_server", path ? std::optional<std::string>(path) : std::nullopt, "/");
  if (program) return *program;
  return std::nullopt;
}

// A port of 127.0.0.1 that nothing listens on now.
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

inline bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

// One moto_server process.
class MotoServer {
 public:
  // Starts `program` on a free port and waits until it accepts connections (up to 20 s); a
  // port someone else took in between gets another try. Check error() afterwards.
  explicit MotoServer(const std::string& program) {
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) Start(program);
  }
  ~MotoServer() { Stop(); }
  MotoServer(const MotoServer&) = delete;
  MotoServer& operator=(const MotoServer&) = delete;

  // Empty once the server answers; else why it does not, with the end of its output.
  const std::string& error() const { return error_; }
  // The endpoint for every service.
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // A TemplateURL for an object of moto's S3: moto reads it from its own S3 only when the URL
  // names localhost.
  std::string TemplateUrl(const std::string& bucket, const std::string& key) const {
    return "http://localhost:" + std::to_string(port_) + "/" + bucket + "/" + key;
  }
  // Makes the S3 bucket `name` (S3Client makes none); the error names the request.
  Status CreateBucket(aws::HttpClient& http, aws::CredentialsProvider& credentials,
                      const std::string& name) const {
    aws::AwsClientOptions options;
    options.service = "s3";
    options.endpoint = endpoint();
    options.s3_rules = true;
    auto client = aws::AwsClient::Create(http, credentials, options);
    if (!client) return Fail(client.error());
    aws::AwsRequest request;
    request.method = "PUT";
    request.path = "/" + name;
    request.what = "CreateBucket " + name;
    auto made = (*client)->Send(request);
    if (!made) return Fail(made.error().text);
    return {};
  }

 private:
  void Start(const std::string& program) {
    port_ = FreePort();
    const std::string log_path = log_dir_ / "moto.log";
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    std::vector<std::string> env;
    for (char** entry = environ; *entry != nullptr; ++entry) env.emplace_back(*entry);
    SpawnRequest request;
    request.program = program;
    request.argv = {program, "-H", "127.0.0.1", "-p", std::to_string(port_)};
    request.env = std::move(env);
    request.new_process_group = true;
    request.stdout_fd = log;
    request.stderr_fd = log;
    Result<pid_t> pid = Spawn(request);
    ::close(log);
    if (!pid) {
      error_ = "cannot start " + program + ": " + pid.error();
      return;
    }
    pid_ = *pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Accepts(port_)) {
        error_.clear();
        return;
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        ::kill(-pid_, SIGKILL);  // anything it left in its group
        pid_ = -1;
        error_ = program + " exited at once: " + ReadTextFile(log_path);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    error_ = program + " did not listen on port " + std::to_string(port_) +
             " within 20 s: " + ReadTextFile(log_path);
    Stop();
  }

  // SIGTERM to the group, SIGKILL after two seconds, and reaped.
  void Stop() {
    StopProcessGroup(pid_, std::chrono::seconds(2));
    pid_ = -1;
  }

  TempDir log_dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string error_ = "not started";
};

// A fixture whose every test has a moto server of its own (moto()), or is skipped when
// moto_server is not installed.
class MotoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<std::string> program = FindMotoServer();
    if (!program) {
      const char* message =
          "moto_server NOT FOUND (neither under ~/.pyenv/versions/*/bin nor on PATH): the tests "
          "against the AWS emulator moto are SKIPPED; install it with pip install "
          "'moto[server]'";
      std::cerr << "*** " << message << "\n";
      GTEST_SKIP() << message;
    }
    moto_ = std::make_unique<MotoServer>(*program);
    ASSERT_EQ(moto_->error(), "");
  }

  MotoServer& moto() { return *moto_; }

 private:
  std::unique_ptr<MotoServer> moto_;
};

}  // namespace runner::testing
