// Activation quantizers, one thread per block, rounding as Fennec's CPU does on x86 (ggml's
// AVX2 quantize_row_q8_0/q8_1: x * (127 / amax), half to even; Q8_K as quantize_row_q8_K_ref).
// Output layout: see act_q8.wgsl.

struct QuantizeParams {
    // Blocks in all vectors together.
    n_blocks: u32,
    // Workgroups along x (a dispatch may be two-dimensional).
    groups_x: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> act_q: array<u32>;
@group(0) @binding(2) var<storage, read_write> act_s: array<f32>;
@group(0) @binding(3) var<uniform> qparams: QuantizeParams;

fn block_index(id: vec3<u32>) -> u32 {
    return id.x + id.y * qparams.groups_x * 64u;
}

// Quantizes the 32 elements at `base` (words at base / 4) and returns (d, sum of quants).
fn quantize_q8_block(base: u32) -> vec2<f32> {
    var amax = 0.0;
    for (var i = 0u; i < 32u; i++) {
        amax = max(amax, abs(x[base + i]));
    }
    let inverse = select(0.0, 127.0 / amax, amax != 0.0);
    var sum = 0;
    for (var w = 0u; w < 8u; w++) {
        let at = base + 4u * w;
        let v = vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
        let q = vec4<i32>(round(v * inverse));
        sum += q.x + q.y + q.z + q.w;
        act_q[at / 4u] = pack4xI8(q);
    }
    return vec2<f32>(amax / 127.0, f32(sum));
}

@compute @workgroup_size(64)
fn quantize_q8_0(@builtin(global_invocation_id) id: vec3<u32>) {
    let block = block_index(id);
    if (block >= qparams.n_blocks) {
        return;
    }
    let d_sum = quantize_q8_block(block * 32u);
    act_s[block] = round_to_f16(d_sum.x);
}

@compute @workgroup_size(64)
fn quantize_q8_1(@builtin(global_invocation_id) id: vec3<u32>) {
    let block = block_index(id);
    if (block >= qparams.n_blocks) {
        return;
    }
    let d_sum = quantize_q8_block(block * 32u);
    act_s[2u * block] = round_to_f16(d_sum.x);
    act_s[2u * block + 1u] = round_to_f16(d_sum.x * d_sum.y);
}

@compute @workgroup_size(64)
fn quantize_q8_k(@builtin(global_invocation_id) id: vec3<u32>) {
    let block = block_index(id);
    if (block >= qparams.n_blocks) {
        return;
    }
    let base = block * 256u;
    // The first element of largest magnitude, with its sign.
    var amax = 0.0;
    var signed_max = 0.0;
    for (var i = 0u; i < 256u; i++) {
        let v = x[base + i];
        if (abs(v) > amax) {
            amax = abs(v);
            signed_max = v;
        }
    }
    let iscale = select(0.0, -127.0 / signed_max, amax != 0.0);
    for (var j = 0u; j < 16u; j++) {
        var sum = 0;
        for (var w = 0u; w < 4u; w++) {
            let at = base + 16u * j + 4u * w;
            let v = vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
            let q = min(vec4<i32>(round(v * iscale)), vec4<i32>(127));
            sum += q.x + q.y + q.z + q.w;
            act_q[at / 4u] = pack4xI8(q);
        }
        act_s[17u * block + 1u + j] = f32(sum);
    }
    act_s[17u * block] = select(0.0, 1.0 / iscale, amax != 0.0);
}
