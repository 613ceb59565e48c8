#include "runner/lazy_library.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runner {
namespace {

using ::testing::StartsWith;

struct MathLibrary {
  double (*cos)(double);
  double (*sqrt)(double);
};

TEST(LazyLibraryTest, BindsEveryEntryPoint) {
  Result<MathLibrary> math =
      LoadLazyLibrary<MathLibrary>("libm.so.6", "libc6", [](SymbolBinder& binder, MathLibrary& m) {
        binder.Bind(m.cos, "cos");
        binder.Bind(m.sqrt, "sqrt");
      });
  ASSERT_TRUE(math) << math.error();
  EXPECT_EQ(math->cos(0.0), 1.0);
  EXPECT_EQ(math->sqrt(4.0), 2.0);
}

TEST(LazyLibraryTest, NamesTheLibraryAndItsPackageWhenItCannotBeLoaded) {
  Result<MathLibrary> math = LoadLazyLibrary<MathLibrary>("libnowhere.so.7", "libnowhere7",
                                                          [](SymbolBinder&, MathLibrary&) {});
  ASSERT_FALSE(math);
  EXPECT_THAT(math.error(), StartsWith("cannot load libnowhere.so.7 (Debian's libnowhere7): "));
}

TEST(LazyLibraryTest, NamesEveryMissingEntryPoint) {
  Result<MathLibrary> math =
      LoadLazyLibrary<MathLibrary>("libm.so.6", "libc6", [](SymbolBinder& binder, MathLibrary& m) {
        binder.Bind(m.cos, "no_such_cos");
        binder.Bind(m.sqrt, "sqrt");
        binder.Bind(m.sqrt, "no_such_sqrt");
      });
  ASSERT_FALSE(math);
  EXPECT_EQ(math.error(), "libm.so.6 lacks no_such_cos, no_such_sqrt");
}

}  // namespace
}  // namespace runner
