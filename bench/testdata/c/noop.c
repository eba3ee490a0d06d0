// The smallest reactor there is: aegis_handle succeeds without a single host
// call, so invoking it measures the sandbox's own work and nothing of the
// guest's. bench_noop is the same empty body, called straight through
// wazero for the baseline.
// Included by path: the harness compiles C fixtures without -I flags.
#include "../../../sdk/c/aegis.h"

AEGIS_HANDLER int aegis_handle(void) { return 0; }

__attribute__((export_name("bench_noop"))) int bench_noop(void) { return 0; }
