// numsim as the golden model of OpenHW's cvfpu (FPnew): a combinational wrapper around its
// multi-format FMA unit (fpnew_fma_multi: FMADD/FNMSUB/ADD/MUL, with op_mod for the subtract
// variants) and its cast unit (fpnew_cast_multi: F2F, F2I, I2F), both built with no pipeline
// registers, formats FP32, FP16, FP8 (e5m2) and FP16ALT (bf16), integers INT8/16/32.
// One packed input bus and one packed output bus: one write and one read per vector from cocotb.
// This file is numsim's (not cvfpu's); tools/cvfpu/cvfpu_golden.py packs and unpacks the buses.
module cvfpu_numsim_top (
  input  logic [127:0] in_bus,   // a[31:0] b[63:32] c[95:64] op[99:96] op_mod[100] rnd[103:101]
                                 // src_fmt[106:104] src2_fmt[109:107] dst_fmt[112:110] int_fmt[114:113]
  output logic [79:0]  out_bus   // fma_result[31:0] cast_result[63:32] fma_status[68:64] cast_status[76:72]
);
  localparam fpnew_pkg::fmt_logic_t  FpFmt  = 5'b10111;   // [0:4] = FP32, FP64 off, FP16, FP8, FP16ALT
  localparam fpnew_pkg::ifmt_logic_t IntFmt = 4'b1110;    // [0:3] = INT8, INT16, INT32, INT64 off

  logic [2:0][31:0]        operands;
  fpnew_pkg::status_t      fma_status, cast_status;
  logic [31:0]             fma_result, cast_result;
  logic                    unused_ready_f, unused_ready_c, unused_valid_f, unused_valid_c;
  logic                    unused_busy_f, unused_busy_c, unused_ext_f, unused_ext_c;
  logic                    unused_tag_f, unused_tag_c, unused_mask_f, unused_mask_c, unused_aux_f, unused_aux_c;

  assign operands = {in_bus[95:64], in_bus[63:32], in_bus[31:0]};

  fpnew_fma_multi #(.FpFmtConfig(FpFmt), .NumPipeRegs(0)) i_fma (
    .clk_i(1'b0), .rst_ni(1'b1),
    .operands_i(operands), .is_boxed_i('1),
    .rnd_mode_i(fpnew_pkg::roundmode_e'(in_bus[103:101])),
    .op_i(fpnew_pkg::operation_e'(in_bus[99:96])), .op_mod_i(in_bus[100]),
    .src_fmt_i(fpnew_pkg::fp_format_e'(in_bus[106:104])),
    .src2_fmt_i(fpnew_pkg::fp_format_e'(in_bus[109:107])),
    .dst_fmt_i(fpnew_pkg::fp_format_e'(in_bus[112:110])),
    .tag_i(1'b0), .mask_i(1'b1), .aux_i(1'b0),
    .in_valid_i(1'b1), .in_ready_o(unused_ready_f), .flush_i(1'b0),
    .result_o(fma_result), .status_o(fma_status), .extension_bit_o(unused_ext_f),
    .tag_o(unused_tag_f), .mask_o(unused_mask_f), .aux_o(unused_aux_f),
    .out_valid_o(unused_valid_f), .out_ready_i(1'b1), .busy_o(unused_busy_f), .reg_ena_i(1'b0)
  );

  fpnew_cast_multi #(.FpFmtConfig(FpFmt), .IntFmtConfig(IntFmt), .NumPipeRegs(0)) i_cast (
    .clk_i(1'b0), .rst_ni(1'b1),
    .operands_i(in_bus[31:0]), .is_boxed_i('1),
    .rnd_mode_i(fpnew_pkg::roundmode_e'(in_bus[103:101])),
    .op_i(fpnew_pkg::operation_e'(in_bus[99:96])), .op_mod_i(in_bus[100]),
    .src_fmt_i(fpnew_pkg::fp_format_e'(in_bus[106:104])),
    .dst_fmt_i(fpnew_pkg::fp_format_e'(in_bus[112:110])),
    .int_fmt_i(fpnew_pkg::int_format_e'(in_bus[114:113])),
    .tag_i(1'b0), .mask_i(1'b1), .aux_i(1'b0),
    .in_valid_i(1'b1), .in_ready_o(unused_ready_c), .flush_i(1'b0),
    .result_o(cast_result), .status_o(cast_status), .extension_bit_o(unused_ext_c),
    .tag_o(unused_tag_c), .mask_o(unused_mask_c), .aux_o(unused_aux_c),
    .out_valid_o(unused_valid_c), .out_ready_i(1'b1), .busy_o(unused_busy_c), .reg_ena_i(1'b0)
  );

  assign out_bus = {3'b0, cast_status, 3'b0, fma_status, cast_result, fma_result};
endmodule
