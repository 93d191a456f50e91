#ifndef CHOREO_CHIREDIS_SHIM_H
#define CHOREO_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
