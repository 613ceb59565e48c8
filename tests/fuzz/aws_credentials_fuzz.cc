// The shared credentials and config files (~/.aws/credentials, ~/.aws/config) and the JSON of
// ECS container credentials. Input: CREDENTIALS NUL CONFIG NUL JSON. The two files are written
// to a temporary directory (the parser reads them through the provider chain, as a run does).
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "runner/aws/credentials.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

class FakeHttp : public runner::aws::HttpClient {
 public:
  explicit FakeHttp(std::string body) : body_(std::move(body)) {}
  runner::Result<runner::aws::HttpResponse> Send(const runner::aws::HttpRequest&) override {
    runner::aws::HttpResponse response;
    response.status = 200;
    response.body = body_;
    return response;
  }

 private:
  std::string body_;
};

const std::string& Directory() {
  static const std::string directory = [] {
    std::string path = (std::filesystem::temp_directory_path() /
                        ("runner-fuzz-credentials-" + std::to_string(getpid())))
                           .string();
    std::filesystem::create_directories(path);
    return path;
  }();
  return directory;
}

void Write(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void GetTwice(const runner::Environment& env, runner::aws::HttpClient& http) {
  auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 55);
  runner::aws::CredentialsOptions options;
  options.now = [&now] { return now; };
  auto chain = runner::aws::MakeDefaultCredentialsChain(env, http, options);
  (void)chain->Get();
  now += std::chrono::hours(24 * 365);  // past most expirations: fetched again
  (void)chain->Get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = runner::fuzz::Fields(runner::fuzz::AsText(data, size), 3);
  const std::string credentials = Directory() + "/credentials";
  const std::string config = Directory() + "/config";
  Write(credentials, fields[0]);
  Write(config, fields[1]);
  FakeHttp http{std::string(fields[2])};

  runner::Environment env = {{"HOME", Directory()},
                             {"AWS_SHARED_CREDENTIALS_FILE", credentials},
                             {"AWS_CONFIG_FILE", config},
                             {"AWS_EC2_METADATA_DISABLED", "true"}};
  GetTwice(env, http);
  (void)runner::aws::DefaultRegion(env);
  env["AWS_PROFILE"] = "dev";
  GetTwice(env, http);
  (void)runner::aws::DefaultRegion(env);

  // No profile anywhere: the container endpoint answers with the JSON.
  runner::Environment container = {
      {"HOME", Directory()},
      {"AWS_SHARED_CREDENTIALS_FILE", Directory() + "/none"},
      {"AWS_CONFIG_FILE", Directory() + "/none"},
      {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/credentials"},
      {"AWS_EC2_METADATA_DISABLED", "true"}};
  GetTwice(container, http);
  return 0;
}
