// Imports a function the sandbox does not provide; Compile must refuse it.
__attribute__((import_module("env"), import_name("forbidden"))) int forbidden(void);

__attribute__((export_name("aegis_handle"))) int aegis_handle(void) { return forbidden(); }
