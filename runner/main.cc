#include "runner/cli.h"

int main(int argc, char** argv) { return runner::Main(argc, argv); }
