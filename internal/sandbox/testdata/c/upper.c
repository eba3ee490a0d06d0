// A WASI command: upper-cases stdin to stdout. Input "fail" exits 3.
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        if (n == 4 && memcmp(buf, "fail", 4) == 0) return 3;
        for (size_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
        fwrite(buf, 1, n, stdout);
    }
    fprintf(stderr, "upper-cased\n");
    return 0;
}
