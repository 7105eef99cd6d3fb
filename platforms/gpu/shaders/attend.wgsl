// Attention over the cache kv_store.wgsl fills (same layout and rounding notes). One
// workgroup per (head, query row); row r sees positions windows[2 r] ..= windows[2 r + 1],
// and heads share key/value heads in groups (GQA).

struct AttentionParams {
    n_rows: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_cells: u32,
    // Stride between the score rows of the scratch buffer: the most keys any row sees.
    max_keys: u32,
    scale: f32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<u32>;
@group(0) @binding(3) var<storage, read> windows: array<u32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> ap: AttentionParams;

const MAX_HEAD_DIM: u32 = 256u;
var<workgroup> query: array<f32, MAX_HEAD_DIM>;
var<workgroup> partial: array<f32, 64>;

// The f16 at half-index `i` of the values.
fn value_at(i: u32) -> f32 {
    return f16_bits_to_f32(values[i >> 1u] >> ((i & 1u) * 16u));
}

fn reduce_max(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            partial[lid] = max(partial[lid], partial[lid + stride]);
        }
        workgroupBarrier();
    }
    let result = partial[0];
    workgroupBarrier();
    return result;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    let result = partial[0];
    workgroupBarrier();
    return result;
}

@compute @workgroup_size(64)
fn attend(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let head = group.x;
    let row = group.y;
    let hd = ap.head_dim;
    let kv_head = head / (ap.n_head / ap.n_head_kv);
    let kv_dim = ap.n_head_kv * hd;
    let first = windows[2u * row];
    let n_keys = windows[2u * row + 1u] + 1u - first;
    let q_at = (row * ap.n_head + head) * hd;
    for (var d = lid; d < hd; d += 64u) {
        query[d] = round_to_f16(q[q_at + d]);
    }
    workgroupBarrier();

    // Scores, each thread its own keys.
    let s_at = (row * ap.n_head + head) * ap.max_keys;
    var local_max = -3.0e38;
    for (var j = lid; j < n_keys; j += 64u) {
        let k_word = (((first + j) % ap.n_cells) * kv_dim + kv_head * hd) / 2u;
        var s = 0.0;
        for (var d = 0u; d < hd / 2u; d++) {
            let pair = keys[k_word + d];
            s += query[2u * d] * f16_bits_to_f32(pair) + query[2u * d + 1u] * f16_bits_to_f32(pair >> 16u);
        }
        s *= ap.scale;
        scores[s_at + j] = s;
        local_max = max(local_max, s);
    }
    let top = reduce_max(lid, local_max);
    var local_sum = 0.0;
    for (var j = lid; j < n_keys; j += 64u) {
        let e = exp(scores[s_at + j] - top);
        scores[s_at + j] = e;
        local_sum += e;
    }
    let inverse = 1.0 / reduce_sum(lid, local_sum);
    for (var j = lid; j < n_keys; j += 64u) {
        scores[s_at + j] = round_to_f16(scores[s_at + j] * inverse);
    }
    storageBarrier();
    workgroupBarrier();

    // The weighted sum of the values, each thread its own output elements.
    for (var d = lid; d < hd; d += 64u) {
        var acc = 0.0;
        for (var j = 0u; j < n_keys; j++) {
            let v_at = ((first + j) % ap.n_cells) * kv_dim + kv_head * hd + d;
            acc += scores[s_at + j] * value_at(v_at);
        }
        out[q_at + d] = acc;
    }
}
