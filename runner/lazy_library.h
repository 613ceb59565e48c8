// Shared libraries loaded on first use rather than linked: every runner process (each build, and
// each `runner __step` child) maps and relocates its linked libraries at start, so a library only
// some runs need (libcurl, libgit2, libarchive) is opened when it is first called instead.
//
// A library's entry points are a table of function pointers named as the library names them
// without its prefix (`curl.easy_init`), declared and bound from one list macro that calls
// X(name) for each, so that a table cannot hold an entry point that is never bound.
#pragma once

#include <string>

#include "runner/result.h"

namespace runner {

// An opened library, binding entry points by name and noting each one it lacks.
class SymbolBinder {
 public:
  // Opens `soname` with dlopen: RTLD_LAZY (the entry points resolve as they are first called, as
  // a linked library's do) and RTLD_LOCAL (what it defines is seen by no other library). It is
  // never unloaded: what it hands out lives until the process ends. Fails "cannot load SONAME
  // (Debian's PACKAGE): why".
  static Result<SymbolBinder> Open(const char* soname, const char* package);

  // Points `entry` at the symbol `name`, or at null when the library lacks it.
  template <class F>
  void Bind(F*& entry, const char* name) {
    entry = reinterpret_cast<F*>(Find(name));
  }

  // Fails "SONAME lacks a, b" naming every symbol Bind did not find.
  Status Complete() const;

 private:
  SymbolBinder(const char* soname, void* handle) : soname_(soname), handle_(handle) {}
  void* Find(const char* name);

  const char* soname_;
  void* handle_;
  std::string missing_;
};

// Opens `soname` and fills a Table with `bind_all(SymbolBinder&, Table&)`, failing as Open and
// Complete do. Not synchronized: a caller loads its table once per process into a function-local
// static, which makes that thread-safe.
template <class Table, class BindAll>
Result<Table> LoadLazyLibrary(const char* soname, const char* package, BindAll bind_all) {
  Result<SymbolBinder> binder = SymbolBinder::Open(soname, package);
  if (!binder) return Fail(binder.error());
  Table table{};
  bind_all(*binder, table);
  if (Status complete = binder->Complete(); !complete) return Fail(complete.error());
  return table;
}

}  // namespace runner
