// SystemVerilog testbench that checks int4_int32_mac against numsim through DPI-C (no vectors, no
// Python): every cycle the expected accumulator comes from ns_dpi_int4_int32_step.
// Icarus Verilog has no DPI; build it with Verilator (>= 5.0, `--binary`) together with mac_dpi.c and
// numsim's C sources: the exact command is in docs/rtl.md ("DPI-C").
module tb_dpi;
    // ---- the DPI-C imports (csrc/ns_dpi.h) ----
    import "DPI-C" function int ns_dpi_int4_int32_step(input int acc, input int a, input int b, input int align_shift,
                                                       input int widen_overflow, input int acc_overflow,
                                                       output int status);
    import "DPI-C" function int ns_dpi_int4_int32_dot(input int a[16], input int b[16], input int align_shift[16],
                                                      input int k, input int c, input int widen_overflow,
                                                      input int acc_overflow, output int status);
    import "DPI-C" function int ns_dpi_int4_fp4r4_fp16_step(input int acc, input int a_lanes, input int b_lanes,
                                                            output int status);
    import "DPI-C" function int ns_dpi_int4_fp4r4_fp16_dot(input int a[16], input int b[16], input int k,
                                                           input int c, input int odd_phase, input int odd_underflow,
                                                           output int status);
    import "DPI-C" function int ns_dpi_f16_odd_phase(input int code, input int odd_underflow);
    // the steps with their IEEE flags (1 inexact, 2 underflow, 4 overflow, 8 infinite, 16 invalid)
    import "DPI-C" function int ns_dpi_int4_int32_step_flags(input int acc, input int a, input int b,
                                                             input int align_shift, input int widen_overflow,
                                                             input int acc_overflow, output int flags,
                                                             output int status);
    import "DPI-C" function int ns_dpi_int4_fp4r4_fp16_step_flags(input int acc, input int a_lanes, input int b_lanes,
                                                                  input int tininess_before, input int nan_rule,
                                                                  output int flags, output int status);

    localparam int SATURATE = 0, WRAP = 1;
    logic clk = 0, rst = 1, load = 0, valid = 0;
    logic signed [31:0] c = 0;
    logic signed [3:0] a = 0, b = 0;
    logic [4:0] align_shift = 0;
    wire signed [31:0] acc;
    int4_int32_mac dut (.clk, .rst, .load, .valid, .c, .a, .b, .align_shift, .acc);

    int expected = 0, status, errors = 0;
    int unsigned rng_state = 32'h2545f491;
    // xorshift32: the same stimulus in every simulator
    function automatic int unsigned rand32();
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        return rng_state;
    endfunction
    always #5 clk = ~clk;
    initial begin
        @(negedge clk);
        rst = 0;
        for (int i = 0; i < 20000; i++) begin
            load = (rand32() % 16) == 0;
            valid = (rand32() % 8) != 0;
            c = rand32();
            a = rand32();
            b = rand32();
            align_shift = (rand32() % 2) ? rand32() % 10 : rand32() % 32;
            if (valid)
                expected = ns_dpi_int4_int32_step(load ? c : expected, a, b, align_shift, SATURATE, WRAP, status);
            else if (load)
                expected = c;
            @(negedge clk);
            if (acc !== expected) begin
                errors++;
                if (errors <= 10) $display("MISMATCH cycle %0d: acc=%h expected %h", i, acc, expected);
            end
        end
        $display("NUMSIM_DPI checked=20000 errors=%0d", errors);
        $finish;
    end
endmodule
