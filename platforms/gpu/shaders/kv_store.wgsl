// The KV cache on the GPU and attention over it. Keys and values are f16, two to a word;
// position p lives in cell p % n_cells (core's ring rule, so chunked windows work as on the
// CPU). Numerics follow core's attention with an f16 cache: the query and the softmax
// weights are rounded to f16 before they meet the f16 keys and values.

struct StoreParams {
    // Rows to store.
    n_rows: u32,
    // Elements per row (even).
    row_len: u32,
    // Workgroups along x.
    groups_x: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> rows: array<f32>;
@group(0) @binding(1) var<storage, read_write> cache: array<u32>;
@group(0) @binding(2) var<storage, read> cells: array<u32>;
@group(0) @binding(3) var<uniform> sp: StoreParams;

// Writes row r of `rows` into cell cells[r] of `cache`, one pair of f16 per thread.
@compute @workgroup_size(64)
fn kv_store(@builtin(global_invocation_id) id: vec3<u32>) {
    let pairs = sp.row_len / 2u;
    let index = id.x + id.y * sp.groups_x * 64u;
    if (index >= sp.n_rows * pairs) {
        return;
    }
    let row = index / pairs;
    let pair = index % pairs;
    let low = f32_to_f16_bits(rows[row * sp.row_len + 2u * pair]);
    let high = f32_to_f16_bits(rows[row * sp.row_len + 2u * pair + 1u]);
    cache[cells[row] * pairs + pair] = low | (high << 16u);
}
