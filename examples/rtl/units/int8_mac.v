// INT8 x INT8 -> exact 16-bit product -> INT32 accumulator, wrapping (examples/rtl/units/int8_mac.toml).
// The cycle contract of docs/rtl.md: rst clears, load takes c, valid adds the product.
module int8_mac (
    input  wire               clk, rst, load, valid,
    input  wire signed [31:0] c,
    input  wire signed [7:0]  a, b,
    output reg  signed [31:0] acc
);
    wire signed [15:0] product = a * b;                  // -128 * -128 = 16384 fits 16 bits
    wire signed [31:0] base = load ? c : acc;
    always @(posedge clk)
        if (rst)        acc <= 32'sd0;
        else if (valid) acc <= base + {{16{product[15]}}, product};   // two's complement wrap
        else if (load)  acc <= c;
endmodule
