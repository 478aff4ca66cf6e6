// OpenBLAS's CBLAS interface plus LAPACKE (Debian: libopenblas-dev, liblapacke-dev).
// cblas.h sits in the openblas include folder that pkg-config `openblas` names.
#include <cblas.h>
#include <lapacke.h>
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
