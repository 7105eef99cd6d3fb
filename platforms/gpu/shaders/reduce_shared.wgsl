// Entry point with a shared-memory tree reduction: works on every adapter.
var<workgroup> partial: array<vec4<f32>, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    partial[lid] = row_partials(group.x, group.y, lid);
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        write_rows(group.x, group.y, partial[0]);
    }
}
