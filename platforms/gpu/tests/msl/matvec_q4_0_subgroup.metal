// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
    uint size3;
    uint size4;
};

struct Params {
    uint n_cols;
    uint n_rows;
    uint row_bytes;
    uint first_row;
    uint out_stride;
    uint pad0_;
    uint pad1_;
    uint pad2_;
};
typedef uint type_2[1];
typedef float type_3[1];
struct type_5 {
    metal::float4 inner[64];
};
constant uint WG = 64u;
constant uint ROWS = 4u;
constant uint ONES = 16843009u;
constant uint LOW_NIBBLES = 252645135u;

float f16_bits_to_f32_(
    uint h
) {
    uint sign = (h & 32768u) << 16u;
    uint exponent = (h >> 10u) & 31u;
    uint mantissa = h & 1023u;
    if (exponent == 0u) {
        float magnitude = static_cast<float>(mantissa) * 0.000000059604645;
        return (sign != 0u) ? -(magnitude) : magnitude;
    }
    if (exponent == 31u) {
        return as_type<float>((sign | 2139095040u) | (mantissa << 13u));
    }
    return as_type<float>((sign | ((exponent + 112u) << 23u)) | (mantissa << 13u));
}

uint naga_f2u32(float value) {
    return static_cast<uint>(metal::clamp(value, 0.0, 4294967000.0));
}

uint f32_to_f16_bits(
    float x
) {
    uint bits_1 = as_type<uint>(x);
    uint sign_1 = (bits_1 >> 16u) & 32768u;
    uint magnitude_1 = bits_1 & 2147483647u;
    if (magnitude_1 > 2139095040u) {
        return sign_1 | 32256u;
    }
    if (magnitude_1 < 947912704u) {
        return sign_1 | naga_f2u32(metal::rint(as_type<float>(magnitude_1) * 16777216.0));
    }
    uint rounded = ((magnitude_1 + 4095u) + ((magnitude_1 >> 13u) & 1u)) & 4294959104u;
    if (rounded >= 1199570944u) {
        return sign_1 | 31744u;
    }
    return sign_1 | ((rounded - 939524096u) >> 13u);
}

float round_to_f16_(
    float x_1
) {
    uint _e1 = f32_to_f16_bits(x_1);
    float _e2 = f16_bits_to_f32_(_e1);
    return _e2;
}

uint load_u32_at(
    uint at,
    device type_2 const& weights,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint word = at >> 2u;
    uint shift = (at & 3u) * 8u;
    uint low = weights[word];
    if (shift == 0u) {
        return low;
    }
    uint _e17 = weights[word + 1u];
    return (low >> shift) | (_e17 << (32u - shift));
}

float load_f16_at(
    uint at_1,
    device type_2 const& weights,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e5 = weights[at_1 >> 2u];
    float _e11 = f16_bits_to_f32_(_e5 >> ((at_1 & 2u) * 8u));
    return _e11;
}

uint fifth_bits(
    uint bits
) {
    return ((((bits & 1u) | ((bits & 2u) << 7u)) | ((bits & 4u) << 14u)) | ((bits & 8u) << 21u)) << 4u;
}

uint group_row(
    uint group_1,
    uint r,
    constant Params& params
) {
    uint _e7 = params.n_rows;
    return metal::min((group_1 * ROWS) + r, _e7 - 1u);
}

void write_rows(
    uint group_2,
    uint vector,
    metal::float4 sums,
    device type_3& out,
    constant Params& params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint r_1 = 0u;
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e30 = r_1;
            r_1 = _e30 + 1u;
        }
        loop_init = false;
        uint _e5 = r_1;
        if (_e5 < ROWS) {
        } else {
            break;
        }
        {
            uint _e10 = r_1;
            uint row = (group_2 * ROWS) + _e10;
            uint _e14 = params.n_rows;
            if (row < _e14) {
                uint _e19 = params.out_stride;
                uint _e23 = params.first_row;
                uint _e27 = r_1;
                out[((vector * _e19) + _e23) + row] = sums[_e27];
            }
        }
    }
    return;
}

uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

metal::float4 row_partials(
    uint group_3,
    uint vector_1,
    uint lid_1,
    device type_2 const& weights,
    constant Params& params,
    device type_2 const& act_q,
    device type_3 const& act_s,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::float4 acc = metal::float4(0.0);
    uint b = {};
    uint r_2 = {};
    uint _e5 = params.n_cols;
    uint n_blocks = naga_div(_e5, 32u);
    uint lane_1 = lid_1 & 3u;
    b = lid_1 >> 2u;
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e93 = b;
            b = _e93 + 16u;
        }
        loop_init_1 = false;
        uint _e16 = b;
        if (_e16 < n_blocks) {
        } else {
            break;
        }
        {
            uint _e20 = params.n_cols;
            uint _e22 = b;
            uint a_block = naga_div((vector_1 * _e20) + (_e22 * 32u), 4u);
            uint a_low = act_q[a_block + lane_1];
            uint a_high = act_q[(a_block + 4u) + lane_1];
            packed_char4 reinterpreted_packed_char4_e38 = as_type<packed_char4>(ONES);
            packed_char4 reinterpreted_packed_char4_e31 = as_type<packed_char4>(a_low);
            packed_char4 reinterpreted_packed_char4_e40 = as_type<packed_char4>(ONES);
            packed_char4 reinterpreted_packed_char4_e37 = as_type<packed_char4>(a_high);
            int a_sum = as_type<int>(as_type<uint>(( + reinterpreted_packed_char4_e38[0] * reinterpreted_packed_char4_e31[0] + reinterpreted_packed_char4_e38[1] * reinterpreted_packed_char4_e31[1] + reinterpreted_packed_char4_e38[2] * reinterpreted_packed_char4_e31[2] + reinterpreted_packed_char4_e38[3] * reinterpreted_packed_char4_e31[3])) + as_type<uint>(( + reinterpreted_packed_char4_e40[0] * reinterpreted_packed_char4_e37[0] + reinterpreted_packed_char4_e40[1] * reinterpreted_packed_char4_e37[1] + reinterpreted_packed_char4_e40[2] * reinterpreted_packed_char4_e37[2] + reinterpreted_packed_char4_e40[3] * reinterpreted_packed_char4_e37[3])));
            uint _e45 = b;
            float d_act = act_s[(vector_1 * n_blocks) + _e45];
            r_2 = 0u;
            uint2 loop_bound_2 = uint2(4294967295u);
            bool loop_init_2 = true;
            while(true) {
                if (metal::all(loop_bound_2 == uint2(0u))) { break; }
                loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
                if (!loop_init_2) {
                    uint _e91 = r_2;
                    r_2 = _e91 + 1u;
                }
                loop_init_2 = false;
                uint _e51 = r_2;
                if (_e51 < ROWS) {
                } else {
                    break;
                }
                {
                    uint _e54 = r_2;
                    uint _e55 = group_row(group_3, _e54, params);
                    uint _e58 = params.row_bytes;
                    uint _e60 = b;
                    uint at_2 = (_e55 * _e58) + (_e60 * 18u);
                    uint _e69 = load_u32_at((at_2 + 2u) + (4u * lane_1), weights, _buffer_sizes);
                    uint _e71 = _e69 & LOW_NIBBLES;
                    packed_char4 reinterpreted_packed_char4_e71 = as_type<packed_char4>(_e71);
                    packed_char4 reinterpreted_packed_char4_e31 = as_type<packed_char4>(a_low);
                    uint _e76 = (_e69 >> 4u) & LOW_NIBBLES;
                    packed_char4 reinterpreted_packed_char4_e76 = as_type<packed_char4>(_e76);
                    packed_char4 reinterpreted_packed_char4_e37 = as_type<packed_char4>(a_high);
                    int sum = as_type<int>(as_type<uint>(as_type<int>(as_type<uint>(( + reinterpreted_packed_char4_e71[0] * reinterpreted_packed_char4_e31[0] + reinterpreted_packed_char4_e71[1] * reinterpreted_packed_char4_e31[1] + reinterpreted_packed_char4_e71[2] * reinterpreted_packed_char4_e31[2] + reinterpreted_packed_char4_e71[3] * reinterpreted_packed_char4_e31[3])) + as_type<uint>(( + reinterpreted_packed_char4_e76[0] * reinterpreted_packed_char4_e37[0] + reinterpreted_packed_char4_e76[1] * reinterpreted_packed_char4_e37[1] + reinterpreted_packed_char4_e76[2] * reinterpreted_packed_char4_e37[2] + reinterpreted_packed_char4_e76[3] * reinterpreted_packed_char4_e37[3])))) - as_type<uint>(as_type<int>(as_type<uint>(8) * as_type<uint>(a_sum))));
                    uint _e82 = r_2;
                    float _e84 = acc[_e82];
                    float _e85 = load_f16_at(at_2, weights, _buffer_sizes);
                    acc[_e82] = _e84 + ((_e85 * d_act) * static_cast<float>(sum));
                }
            }
        }
    }
    metal::float4 _e96 = acc;
    return _e96;
}

struct main_Input {
};
[[max_total_threads_per_threadgroup(64)]] kernel void main_(
  metal::uint3 group [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, uint subgroup [[simdgroup_index_in_threadgroup]]
, uint n_subgroups [[simdgroups_per_threadgroup]]
, uint lane [[thread_index_in_simdgroup]]
, device type_2 const& weights [[user(fake0)]]
, device type_3& out [[user(fake0)]]
, constant Params& params [[user(fake0)]]
, device type_2 const& act_q [[user(fake0)]]
, device type_3 const& act_s [[user(fake0)]]
, threadgroup type_5& partial
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    metal::float4 total = metal::float4(0.0);
    uint s = 0u;
    metal::float4 _e7 = row_partials(group.x, group.y, lid, weights, params, act_q, act_s, _buffer_sizes);
    metal::float4 unnamed = metal::simd_sum(_e7);
    if (lane == 0u) {
        partial.inner[subgroup] = unnamed;
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    if (lid == 0u) {
        uint2 loop_bound_3 = uint2(4294967295u);
        bool loop_init_3 = true;
        while(true) {
            if (metal::all(loop_bound_3 == uint2(0u))) { break; }
            loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
            if (!loop_init_3) {
                uint _e29 = s;
                s = _e29 + 1u;
            }
            loop_init_3 = false;
            uint _e20 = s;
            if (_e20 < n_subgroups) {
            } else {
                break;
            }
            {
                metal::float4 _e22 = total;
                uint _e24 = s;
                metal::float4 _e26 = partial.inner[_e24];
                total = _e22 + _e26;
            }
        }
        metal::float4 _e33 = total;
        write_rows(group.x, group.y, _e33, out, params, _buffer_sizes);
        return;
    } else {
        return;
    }
}
