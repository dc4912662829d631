// Replays numsim vectors through any MAC whose ports follow docs/rtl.md's contract (clk, rst, load,
// valid, c, a, b, [align_shift | sample_shift], acc). Compile with -I <vector dir> (its vectors.vh,
// written by `numsim vectors ... --name vectors`) and -DNS_DUT=<module name>; run with +vectors=<hex>.
`timescale 1ns/1ps
`include "vectors.vh"
module tb_vectors_generic;
    reg clk = 1'b0;
    reg [`NS_WORD_BITS-1:0] w = 0;
    wire rst = w[`NS_RST_LSB], load = w[`NS_LOAD_LSB], valid = w[`NS_VALID_LSB];
    wire [`NS_C_BITS-1:0] c = w[`NS_C_LSB +: `NS_C_BITS];
    wire [`NS_A_BITS-1:0] a = w[`NS_A_LSB +: `NS_A_BITS];
    wire [`NS_B_BITS-1:0] b = w[`NS_B_LSB +: `NS_B_BITS];
    wire [`NS_ACC_BITS-1:0] acc;
`ifdef NS_ALIGN_SHIFT_LSB
    wire [`NS_ALIGN_SHIFT_BITS-1:0] align_shift = w[`NS_ALIGN_SHIFT_LSB +: `NS_ALIGN_SHIFT_BITS];
    `NS_DUT dut (.clk(clk), .rst(rst), .load(load), .valid(valid), .c(c), .a(a), .b(b), .align_shift(align_shift), .acc(acc));
`elsif NS_SAMPLE_SHIFT_LSB
    wire [`NS_SAMPLE_SHIFT_BITS-1:0] sample_shift = w[`NS_SAMPLE_SHIFT_LSB +: `NS_SAMPLE_SHIFT_BITS];
    `NS_DUT dut (.clk(clk), .rst(rst), .load(load), .valid(valid), .c(c), .a(a), .b(b), .sample_shift(sample_shift), .acc(acc));
`else
    `NS_DUT dut (.clk(clk), .rst(rst), .load(load), .valid(valid), .c(c), .a(a), .b(b), .acc(acc));
`endif
    reg [`NS_WORD_BITS-1:0] mem [0:`NS_COUNT-1];
    wire [`NS_ACC_BITS-1:0] expected = w[`NS_ACC_LSB +: `NS_ACC_BITS];
    reg [8*1024-1:0] path;
    integer i, errors;
    always #5 clk = ~clk;
    initial begin
        if (!$value$plusargs("vectors=%s", path)) path = "vectors.hex";
        $readmemh(path, mem);
        errors = 0;
        for (i = 0; i < `NS_COUNT; i = i + 1) begin
            w = mem[i];
            @(posedge clk);
            #1;
            if (acc !== expected) begin
                errors = errors + 1;
                if (errors <= 10)
                    $display("MISMATCH vector %0d: rst=%0d load=%0d valid=%0d c=%h a=%h b=%h: acc=%h expected %h",
                             i, rst, load, valid, c, a, b, acc, expected);
            end
        end
        $display("NUMSIM_VECTORS checked=%0d errors=%0d", i, errors);
        $finish;
    end
endmodule
