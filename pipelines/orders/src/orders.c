/* The example service: a tiny order-total calculator that the example pipeline builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ORDERS_VERSION
#define ORDERS_VERSION "dev"
#endif

static long total_cents(int argc, char **argv) {
  long total = 0;
  for (int i = 1; i < argc; ++i) total += strtol(argv[i], NULL, 10);
  return total;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("orders %s\n", ORDERS_VERSION);
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "--self-test") == 0) {
    char *args[] = {"orders", "150", "250", NULL};
    return total_cents(3, args) == 400 ? 0 : 1;
  }
  printf("%ld\n", total_cents(argc, argv));
  return 0;
}
