// A minimal echo command module: copies stdin to stdout. Every invocation
// of a command module is a fresh instance running _start.
#include <stdio.h>

int main(void) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
    return 0;
}
