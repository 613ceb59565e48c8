#include "steps/kinds.h"

#include "steps/deploy.h"
#include "steps/packer.h"
#include "steps/params.h"
#include "steps/shell.h"
#include "steps/upload.h"
#include "steps/zip.h"

namespace runner {

namespace {

KindRegistry MakeRegistry() {
  KindRegistry kinds;
  // One line per kind. The first is the one suggested to a step that has none.
  kinds.Add<ShellKind>();
  kinds.Add<ZipKind>();
  kinds.Add<PackerKind>();
  kinds.Add<ParamsKind>();
  kinds.Add<UploadKind>();
  kinds.Add<DeployKind>();
  return kinds;
}

}  // namespace

const KindRegistry& BuiltinKinds() {
  static const KindRegistry kinds = MakeRegistry();
  return kinds;
}

}  // namespace runner
