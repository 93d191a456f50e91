#ifndef CHOREO_CLIBPQ_SHIM_H
#define CHOREO_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
