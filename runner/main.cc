#include "runner/cli.h"
#include "steps/kinds.h"

int main(int argc, char** argv) { return runner::Main(argc, argv, runner::BuiltinKinds()); }
