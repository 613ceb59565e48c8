#include "runner/worker/log_shipper.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "runner/fs.h"

namespace runner::worker {

namespace {

namespace stdfs = std::filesystem;

// The most one chunk holds: a step that writes fast ships in several.
constexpr std::size_t kMaxChunk = std::size_t{1} << 20;

// Up to `size` bytes (kMaxChunk at most) of `path` from `offset`.
Result<std::string> ReadFrom(const std::string& path, std::uint64_t offset, std::uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Fail(fmt::format("cannot read {}: {}", path, ErrnoText(errno)));
  std::string data(std::min<std::uint64_t>(size, kMaxChunk), '\0');
  ssize_t got;
  do {
    got = ::pread(fd.get(), data.data(), data.size(), static_cast<off_t>(offset));
  } while (got < 0 && errno == EINTR);
  if (got < 0) return Fail(fmt::format("cannot read {}: {}", path, ErrnoText(errno)));
  data.resize(static_cast<std::size_t>(got));
  return data;
}

// The name of chunk `n` (from 1) of a step's log in attempt `attempt`.
std::string ChunkName(const std::string& id, int attempt, const std::string& step, int n) {
  return fmt::format("{}{:06}", Records::LogChunkPrefix(id, attempt, step), n);
}

}  // namespace

Status LogShipper::Ship() {
  std::string first_error;
  auto note = [&](const std::string& error) {
    if (first_error.empty()) first_error = error;
  };
  // Read before the logs and put after them: a step that this live.json says has ended has
  // every byte of its log shipped once it is put.
  Result<std::string> live = ReadFile(build_dir_ + "/live.json");
  std::error_code ec;
  for (const auto& file : stdfs::directory_iterator(build_dir_ + "/logs", ec)) {
    const std::string name = file.path().filename().string();
    if (!name.ends_with(".log")) continue;
    const std::string step = name.substr(0, name.size() - 4);
    StepLog& log = logs_[step];
    // Every few seconds for every step: a log that has not grown is not opened.
    std::error_code size_error;
    const std::uint64_t size = file.file_size(size_error);
    if (size_error) {
      note(fmt::format("cannot read {}: {}", file.path().string(), size_error.message()));
      continue;
    }
    while (log.offset < size) {
      auto data = ReadFrom(file.path().string(), log.offset, size - log.offset);
      if (!data) {
        note(data.error());
        break;
      }
      if (data->empty()) break;
      auto put = records_.store().Put(ChunkName(id_, attempt_, step, log.chunks + 1), *data,
                                      "text/plain; charset=utf-8");
      if (!put) {
        note(put.error());
        break;
      }
      ++log.chunks;
      log.offset += data->size();
    }
  }
  if (live && *live != live_) {
    if (auto put = records_.store().Put(Records::RunName(id_, attempt_, "live.json"), *live,
                                        "application/json")) {
      live_ = std::move(*live);
    } else {
      note(put.error());
    }
  }
  if (!first_error.empty()) return Fail(first_error);
  return {};
}

Result<bool> LogShipper::Publish(const std::string& report) {
  const std::string report_name = Records::BuildName(id_, "report.json");
  auto existing = records_.store().Stat(report_name);
  if (!existing) return Fail(existing.error());
  if (*existing) return false;
  std::error_code ec;
  for (const auto& file : stdfs::directory_iterator(build_dir_ + "/logs", ec)) {
    const std::string name = file.path().filename().string();
    if (!name.ends_with(".log")) continue;
    auto put = records_.store().PutFile(Records::BuildName(id_, "logs/" + name),
                                        file.path().string(), "text/plain; charset=utf-8");
    if (!put) return Fail(put.error());
  }
  if (stdfs::exists(build_dir_ + "/junit.xml", ec)) {
    auto put = records_.store().PutFile(Records::BuildName(id_, "junit.xml"),
                                        build_dir_ + "/junit.xml", "application/xml");
    if (!put) return Fail(put.error());
  }
  auto put = records_.store().PutIfAbsent(report_name, report, "application/json");
  if (!put) return Fail(put.error());
  return put->has_value();
}

}  // namespace runner::worker
