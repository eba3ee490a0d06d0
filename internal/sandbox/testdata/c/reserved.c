// Imports the function the sandbox adds for preemption, to call it on its
// own; Compile must refuse it.
__attribute__((import_module("aegis_preempt"), import_name("tick"))) int tick(void);

__attribute__((export_name("aegis_handle"))) int aegis_handle(void) { return tick(); }
