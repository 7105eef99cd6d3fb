// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
};

struct ArgmaxParams {
    uint n_rows;
    uint row_len;
    uint pad0_;
    uint pad1_;
};
typedef float type_2[1];
typedef uint type_3[1];
struct type_4 {
    float inner[64];
};
struct type_5 {
    uint inner[64];
};

bool beats(
    float v1_,
    uint i1_,
    uint f1_,
    float v0_,
    uint i0_,
    uint f0_
) {
    bool local_2 = {};
    bool local_3 = {};
    bool local_4 = {};
    if (f1_ == 0u) {
        return false;
    }
    if (!((f0_ == 0u))) {
        local_2 = v1_ > v0_;
    } else {
        local_2 = true;
    }
    bool _e16 = local_2;
    if (!(_e16)) {
        if (v1_ == v0_) {
            local_4 = i1_ < i0_;
        } else {
            local_4 = false;
        }
        bool _e25 = local_4;
        local_3 = _e25;
    } else {
        local_3 = true;
    }
    bool _e27 = local_3;
    return _e27;
}

struct argmaxInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void argmax(
  metal::uint3 group [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, device type_2 const& logits [[user(fake0)]]
, device type_3& best [[user(fake0)]]
, constant ArgmaxParams& ap [[user(fake0)]]
, threadgroup type_4& best_value
, threadgroup type_5& best_index
, threadgroup type_5& found
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    float value = 0.0;
    uint index = 0u;
    uint has = 0u;
    uint i = {};
    bool local = {};
    bool local_1 = {};
    uint stride = 32u;
    uint row = group.x;
    i = lid;
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e45 = i;
            i = _e45 + 64u;
        }
        loop_init = false;
        uint _e10 = i;
        uint _e13 = ap.row_len;
        if (_e10 < _e13) {
        } else {
            break;
        }
        {
            uint _e18 = ap.row_len;
            uint _e20 = i;
            float v = logits[(row * _e18) + _e20];
            bool is_number = (as_type<uint>(v) & 2147483647u) <= 2139095040u;
            if (is_number) {
                uint _e31 = has;
                if (!((_e31 == 0u))) {
                    float _e37 = value;
                    local_1 = v > _e37;
                } else {
                    local_1 = true;
                }
                bool _e40 = local_1;
                local = _e40;
            } else {
                local = false;
            }
            bool _e42 = local;
            if (_e42) {
                value = v;
                uint _e43 = i;
                index = _e43;
                has = 1u;
            }
        }
    }
    float _e50 = value;
    best_value.inner[lid] = _e50;
    uint _e53 = index;
    best_index.inner[lid] = _e53;
    uint _e56 = has;
    found.inner[lid] = _e56;
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e98 = stride;
            stride = _e98 >> 1u;
        }
        loop_init_1 = false;
        uint _e59 = stride;
        if (_e59 > 0u) {
        } else {
            break;
        }
        {
            uint _e62 = stride;
            if (lid < _e62) {
                uint _e64 = stride;
                uint other = lid + _e64;
                float _e68 = best_value.inner[other];
                uint _e71 = best_index.inner[other];
                uint _e74 = found.inner[other];
                float _e77 = best_value.inner[lid];
                uint _e80 = best_index.inner[lid];
                uint _e83 = found.inner[lid];
                bool _e84 = beats(_e68, _e71, _e74, _e77, _e80, _e83);
                if (_e84) {
                    float _e89 = best_value.inner[other];
                    best_value.inner[lid] = _e89;
                    uint _e94 = best_index.inner[other];
                    best_index.inner[lid] = _e94;
                    found.inner[lid] = 1u;
                }
            }
            metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        }
    }
    if (lid == 0u) {
        uint _e107 = best_index.inner[0];
        best[row] = _e107;
        return;
    } else {
        return;
    }
}
