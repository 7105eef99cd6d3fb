// The index of each row's largest element (the first of equals; NaN never wins; 0 for a
// row of NaN), one workgroup per row: a greedy token costs a 4-byte read-back.

struct ArgmaxParams {
    n_rows: u32,
    row_len: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> best: array<u32>;
@group(0) @binding(2) var<uniform> ap: ArgmaxParams;

var<workgroup> best_value: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;
// Whether the thread's candidate is a number at all.
var<workgroup> found: array<u32, 64>;

// Whether candidate (v1, i1, f1) beats (v0, i0, f0).
fn beats(v1: f32, i1: u32, f1: u32, v0: f32, i0: u32, f0: u32) -> bool {
    if (f1 == 0u) {
        return false;
    }
    return f0 == 0u || v1 > v0 || (v1 == v0 && i1 < i0);
}

@compute @workgroup_size(64)
fn argmax(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = group.x;
    var value = 0.0;
    var index = 0u;
    var has = 0u;
    for (var i = lid; i < ap.row_len; i += 64u) {
        let v = logits[row * ap.row_len + i];
        // NaN tested on the bits: fast-math compilers may fold `v == v` to true.
        let is_number = (bitcast<u32>(v) & 0x7fffffffu) <= 0x7f800000u;
        if (is_number && (has == 0u || v > value)) {
            value = v;
            index = i;
            has = 1u;
        }
    }
    best_value[lid] = value;
    best_index[lid] = index;
    found[lid] = has;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            let other = lid + stride;
            if (beats(best_value[other], best_index[other], found[other], best_value[lid], best_index[lid], found[lid])) {
                best_value[lid] = best_value[other];
                best_index[lid] = best_index[other];
                found[lid] = 1u;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        best[row] = best_index[0];
    }
}
