// K-quant weights (256-element super-blocks) times Q8_K activations: sixteen threads share a
// super-block, sixteen elements each.
fn sign_extend_byte(x: u32) -> i32 {
    return bitcast<i32>(x << 24u) >> 24u;
}

// Byte `k` (0..11) of the packed scales.
fn k_scale_byte(scales: vec3<u32>, k: u32) -> u32 {
    return (scales[k >> 2u] >> ((k & 3u) * 8u)) & 0xffu;
}

// Sub-block `j`'s (scale, min), 6 bits each, as Q4_K and Q5_K pack them.
fn k_scale_min(scales: vec3<u32>, j: u32) -> vec2<i32> {
    if (j < 4u) {
        return vec2<i32>(i32(k_scale_byte(scales, j) & 63u), i32(k_scale_byte(scales, j + 4u) & 63u));
    }
    let sc = (k_scale_byte(scales, j + 4u) & 0xfu) | ((k_scale_byte(scales, j - 4u) >> 6u) << 4u);
    let m = (k_scale_byte(scales, j + 4u) >> 4u) | ((k_scale_byte(scales, j) >> 6u) << 4u);
    return vec2<i32>(i32(sc), i32(m));
}
