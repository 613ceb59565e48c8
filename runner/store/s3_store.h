// The artifact store under an S3 prefix (`to: s3://bucket/prefix`), through aws::S3Client.
#pragma once

#include <memory>
#include <string_view>

#include "runner/store/artifact_store.h"

namespace runner {

// `url` is s3://bucket[/prefix]. Fails on a bad URL or S3 options that cannot work.
Result<std::unique_ptr<ArtifactStore>> MakeS3Store(std::string_view url,
                                                   ArtifactStoreOptions options);

}  // namespace runner
