/* numsim C ABI: one include for C, C++ and SystemVerilog DPI-C callers.
 * Each module header is listed here once. */
#ifndef NUMSIM_H
#define NUMSIM_H
#include "ns_cpu.h"
#include "ns_threads.h"
#include "ns_formats.h"
#include "ns_fastgemm.h"
#include "ns_intgemm.h"
#include "ns_imatmul.h"
#include "ns_units.h"
#include "ns_hw.h"
#include "ns_dpi.h"
#include "ns_verify.h"
#include "ns_fmachain.h"
#include "ns_fpops.h"
#include "ns_gemm_batch.h"
#include "ns_formats_f64.h"
#include "ns_cpurec.h"
#include "ns_mfma.h"
#endif
