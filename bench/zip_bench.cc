// A minimal driver for bench/zip.sh: runs the zip step's code on a directory without the
// runner's scheduler, so the benchmark works before (and independently of) `runner __step`.
//
//   zip_bench DIR DEST LEVEL SRC...   (sources and dest relative to DIR, which is the workspace)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "steps/zip.h"

namespace {

class BenchIo : public runner::StepIo {
 public:
  explicit BenchIo(std::string dir) : dir_(std::move(dir)), env_(runner::CurrentEnvironment()) {
    build_.workspace = dir_;
  }
  void Log(std::string_view text) override { std::fwrite(text.data(), 1, text.size(), stderr); }
  void SetOutput(const std::string& name, const std::string& value) override {
    std::printf("%s=%s\n", name.c_str(), value.c_str());
  }
  void AddArtifact(const runner::Artifact&) override {}
  bool cancelled() const override { return false; }
  const std::string& dir() const override { return dir_; }
  const std::string& workspace() const override { return dir_; }
  const runner::BuildContext& build() const override { return build_; }
  const runner::Environment& env() const override { return env_; }

 private:
  std::string dir_;
  runner::BuildContext build_;
  runner::Environment env_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: zip_bench DIR DEST LEVEL SRC...\n");
    return 2;
  }
  runner::ZipOptions options;
  options.dest = argv[2];
  options.level = std::atoi(argv[3]);
  for (int i = 4; i < argc; ++i) options.files.push_back({argv[i], std::nullopt});
  BenchIo io(argv[1]);
  runner::Status status = runner::RunZip(options, io);
  if (!status) {
    std::fprintf(stderr, "%s\n", status.error().c_str());
    return 1;
  }
  return 0;
}
