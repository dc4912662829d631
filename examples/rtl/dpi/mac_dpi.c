/* The DPI-C translation unit: emits numsim's DPI functions (csrc/ns_dpi.h) for a SystemVerilog
 * simulator. Build it with every C file of csrc/ (see docs/rtl.md). */
#define NS_DPI_IMPLEMENTATION
#include "ns_dpi.h"
