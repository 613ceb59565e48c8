#include "runner/store/local_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "runner/atomic_file.h"
#include "runner/crypto.h"
#include "runner/fs.h"
#include "runner/hex.h"
#include "runner/sha256.h"
#include "runner/workspace_path.h"

namespace runner {

namespace {

namespace fs = std::filesystem;

// SHA-256 for the manifest and MD5 for the ETag S3 would have given, in one pass.
class Digests {
 public:
  Digests() : md5_(Crypto().EVP_MD_CTX_new()) {
    Crypto().EVP_DigestInit_ex(md5_, Crypto().EVP_md5(), nullptr);
  }
  ~Digests() { Crypto().EVP_MD_CTX_free(md5_); }
  Digests(const Digests&) = delete;
  Digests& operator=(const Digests&) = delete;

  void Update(std::string_view data) {
    sha_.Update(data);
    Crypto().EVP_DigestUpdate(md5_, data.data(), data.size());
    size_ += data.size();
  }
  void Finish(StoredObject& object) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    Crypto().EVP_DigestFinal_ex(md5_, digest, &digest_size);
    object.etag = "\"" + HexEncode(digest, digest_size) + "\"";
    object.sha256 = sha_.FinishHex();
    object.size = size_;
  }

 private:
  Sha256 sha_;
  EVP_MD_CTX* md5_;
  std::uint64_t size_ = 0;
};

// A file being written: AtomicFileWriter's and PutIfAbsent's temporary `.NAME.tmp.XXXXXX`.
bool IsTemporary(std::string_view file) {
  constexpr std::string_view kTmp = ".tmp.";
  constexpr size_t kSuffix = 6;  // mkstemp's XXXXXX
  return file.size() > 1 + kTmp.size() + kSuffix && file.starts_with('.') &&
         file.substr(file.size() - kSuffix - kTmp.size(), kTmp.size()) == kTmp;
}

// A rename or link is durable only once its directory is synced.
Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(fmt::format("cannot open directory '{}': {}", dir, ErrnoText(errno)));
  int synced = ::fsync(fd);
  std::string error = synced != 0 ? ErrnoText(errno) : "";
  ::close(fd);
  if (synced != 0) return Fail(fmt::format("cannot sync directory '{}': {}", dir, error));
  return {};
}

class LocalStore : public ArtifactStore {
 public:
  LocalStore(std::string root, std::function<bool()> cancelled)
      : root_(std::move(root)),
        url_("file://" + root_ + (root_ == "/" ? "" : "/")),
        cancelled_(std::move(cancelled)) {}

  const std::string& url() const override { return url_; }
  std::string Describe() const override { return url_; }

  Result<StoredObject> PutFile(const std::string& name, const std::string& path,
                               std::string_view) override {
    auto target = PathOf(name);
    if (!target) return Fail(target.error());
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(fmt::format("cannot open '{}': {}", path, ErrnoText(errno)));
    AtomicFileWriter writer;
    if (Status opened = writer.Open(*target); !opened) {
      ::close(fd);
      return Fail(opened.error());
    }
    Digests digests;
    std::string buffer(1 << 20, '\0');
    Status status;
    while (true) {
      if (cancelled_ && cancelled_()) {
        status = Fail(fmt::format("cancelled (copy of '{}' to {})", path, UrlOf(name)));
        break;
      }
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = Fail(fmt::format("cannot read '{}': {}", path, ErrnoText(errno)));
        break;
      }
      if (n == 0) break;
      std::string_view chunk(buffer.data(), static_cast<size_t>(n));
      digests.Update(chunk);
      writer.Append(chunk);
    }
    ::close(fd);
    if (!status) return Fail(status.error());  // the writer's destructor removes the temporary
    if (Status committed = Commit(writer, *target); !committed) return Fail(committed.error());
    StoredObject object = Object(name);
    digests.Finish(object);
    return object;
  }

  Result<StoredObject> Put(const std::string& name, std::string_view bytes,
                           std::string_view) override {
    auto target = PathOf(name);
    if (!target) return Fail(target.error());
    AtomicFileWriter writer;
    if (Status opened = writer.Open(*target); !opened) return Fail(opened.error());
    writer.Append(bytes);
    if (Status committed = Commit(writer, *target); !committed) return Fail(committed.error());
    return ObjectOf(name, bytes);
  }

  Result<std::optional<StoredObject>> PutIfAbsent(const std::string& name, std::string_view bytes,
                                                  std::string_view) override {
    auto target = PathOf(name);
    if (!target) return Fail(target.error());
    std::string dir = fs::path(*target).parent_path().string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Fail(fmt::format("cannot create directory '{}': {}", dir, ec.message()));
    // Written whole under a temporary name, then linked: link(2), unlike rename(2), fails
    // when the name exists, so two builds racing for one name cannot both win.
    std::string temp = fmt::format("{}/.{}.tmp.XXXXXX", dir, fs::path(*target).filename().string());
    int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0) return Fail(fmt::format("cannot create '{}': {}", temp, ErrnoText(errno)));
    ::fchmod(fd, 0644);
    std::string error;
    if (Status written = WriteAll(fd, bytes); !written) {
      error = fmt::format("cannot write '{}': {}", temp, written.error());
    }
    if (error.empty() && ::fsync(fd) != 0) {
      error = fmt::format("cannot sync '{}': {}", temp, ErrnoText(errno));
    }
    ::close(fd);
    bool exists = false;
    if (error.empty() && ::link(temp.c_str(), target->c_str()) != 0) {
      exists = errno == EEXIST;
      if (!exists) error = fmt::format("cannot link '{}': {}", *target, ErrnoText(errno));
    }
    ::unlink(temp.c_str());
    if (!error.empty()) return Fail(error);
    if (exists) return std::nullopt;
    if (Status synced = SyncDirectory(dir); !synced) return Fail(synced.error());
    return ObjectOf(name, bytes);
  }

  Result<std::string> Get(const std::string& name) override {
    auto target = PathOf(name);
    if (!target) return Fail(target.error());
    auto bytes = ReadFile(*target);
    if (!bytes) return Fail(fmt::format("cannot read {}: {}", UrlOf(name), bytes.error()));
    return bytes;
  }

  Result<std::optional<std::string>> Find(const std::string& name) override {
    auto target = PathOf(name);
    if (!target) return Fail(target.error());
    UniqueFd fd(::open(target->c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() && errno == ENOENT) return std::nullopt;
    if (!fd.valid()) return Fail(fmt::format("cannot read {}: {}", UrlOf(name), ErrnoText(errno)));
    auto bytes = ReadAll(fd.get(), std::string().max_size());
    if (!bytes) return Fail(fmt::format("cannot read {}: {}", UrlOf(name), bytes.error()));
    return std::move(*bytes);
  }

  Result<std::optional<StoredObjectInfo>> Stat(const std::string& name) override {
    auto target = PathOf(name);
    if (!target) return Fail(target.error());
    struct stat st;
    if (::stat(target->c_str(), &st) != 0) {
      if (errno == ENOENT) return std::nullopt;
      return Fail(fmt::format("cannot stat {}: {}", UrlOf(name), ErrnoText(errno)));
    }
    // The ETag is the content's MD5, as PutFile recorded it.
    auto bytes = Get(name);
    if (!bytes) return Fail(bytes.error());
    StoredObject object = ObjectOf(name, *bytes);
    return StoredObjectInfo{object.size, object.etag};
  }

  Result<std::vector<std::string>> List(const std::string& prefix) override {
    if (Status ok = CheckStorePrefix(prefix); !ok) return Fail(ok.error());
    // Only the directory the names share is walked: "stg/2026" lists in stg/.
    const std::string below = prefix.substr(0, prefix.rfind('/') + 1);
    if (!below.empty()) {
      if (auto dir = PathOf(below.substr(0, below.size() - 1)); !dir) return Fail(dir.error());
    }
    const std::string dir = root_ + "/" + below;
    std::vector<std::string> names;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, ec);
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
      return names;  // nothing is stored below it
    }
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::directory_entry& entry = *it;
      std::error_code type_ec;
      if (entry.is_symlink(type_ec) || !entry.is_regular_file(type_ec)) continue;
      if (IsTemporary(entry.path().filename().string())) continue;
      std::string name = below + entry.path().string().substr(dir.size());
      if (name.starts_with(prefix)) names.push_back(std::move(name));
    }
    if (ec) return Fail(fmt::format("cannot list {}: {}", UrlOf(below), ec.message()));
    std::ranges::sort(names);
    return names;
  }

 private:
  // The file `name` is stored in, once it is known to stay below the root after symlinks: a
  // link inside the store (to a directory or a file elsewhere) is never written through.
  Result<std::string> PathOf(const std::string& name) const {
    if (Status ok = CheckStoreName(name); !ok) return Fail(ok.error());
    std::string path = root_ + "/" + name;
    auto real_root = ResolvePath(root_, "/");
    if (!real_root) return Fail(real_root.error());
    auto real = ResolvePath(path, "/");
    if (!real) return Fail(real.error());
    if (!IsWithin(*real, *real_root) || *real == *real_root) {
      return Fail(
          fmt::format("{} resolves to {}, outside the store {}: a symlink in the store "
                      "points elsewhere; remove it",
                      UrlOf(name), *real, *real_root));
    }
    return path;
  }

  Status Commit(AtomicFileWriter& writer, const std::string& target) {
    if (Status committed = writer.Commit(); !committed) return committed;
    return SyncDirectory(fs::path(target).parent_path().string());
  }

  StoredObject Object(const std::string& name) const {
    StoredObject object;
    object.name = name;
    object.key = name;
    object.url = UrlOf(name);
    return object;
  }

  StoredObject ObjectOf(const std::string& name, std::string_view bytes) const {
    StoredObject object = Object(name);
    Digests digests;
    digests.Update(bytes);
    digests.Finish(object);
    return object;
  }

  std::string root_;
  std::string url_;
  std::function<bool()> cancelled_;
};

}  // namespace

std::unique_ptr<ArtifactStore> MakeLocalStore(std::string root, std::function<bool()> cancelled) {
  return std::make_unique<LocalStore>(std::move(root), std::move(cancelled));
}

}  // namespace runner
