// The artifact store in a local directory (`to: file:///abs/dir` or a relative path).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "runner/store/artifact_store.h"

namespace runner {

// `root` is absolute and normalized (no trailing '/'); it is created on the first put.
// `cancelled` (optional) stops a copy in progress.
std::unique_ptr<ArtifactStore> MakeLocalStore(std::string root, std::function<bool()> cancelled);

}  // namespace runner
