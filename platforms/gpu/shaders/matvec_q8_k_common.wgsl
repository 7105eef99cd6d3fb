// K-quant weights (256-element super-blocks) times Q8_K activations: sixteen threads share a
// super-block, sixteen elements each.
fn sign_extend_byte(x: u32) -> i32 {
    return bitcast<i32>(x << 24u) >> 24u;
}
