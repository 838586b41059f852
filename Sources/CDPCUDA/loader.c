// Fills the function table from libdpcuda.so at run time, so that nothing links against CUDA:
// a machine without the library or a GPU still builds and runs the CPU backend.

#include "dpcuda.h"

#include <dlfcn.h>
#include <stdio.h>

int dpc_load(const char *path, dpc_functions *table, char *error, size_t error_capacity) {
    // RTLD_LOCAL: the library's cuBLAS and CUDA runtime symbols stay out of the process's namespace.
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(error, error_capacity, "%s", dlerror());
        return 1;
    }
#define DPCUDA_RESOLVE(ret, name, params)                                                        \
    symbol = dlsym(library, #name);                                                              \
    if (symbol == NULL) {                                                                        \
        snprintf(error, error_capacity, "%s lacks the symbol %s (built from another version?)",  \
                 path, #name);                                                                   \
        dlclose(library);                                                                        \
        return 2;                                                                                \
    }                                                                                            \
    table->name = (ret(*) params)symbol;
    void *symbol;
    DPCUDA_FUNCTIONS(DPCUDA_RESOLVE)
#undef DPCUDA_RESOLVE
    return 0;
}
