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
    uint lane = lid_1 & 3u;
    b = lid_1 >> 2u;
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e111 = b;
            b = _e111 + 16u;
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
            uint a_low = act_q[a_block + lane];
            uint a_high = act_q[(a_block + 4u) + lane];
            uint _e41 = b;
            float d_act = act_s[2u * ((vector_1 * n_blocks) + _e41)];
            uint _e49 = b;
            float _e55 = act_s[(2u * ((vector_1 * n_blocks) + _e49)) + 1u];
            float s_act = (lane == 0u) ? _e55 : 0.0;
            r_2 = 0u;
            uint2 loop_bound_2 = uint2(4294967295u);
            bool loop_init_2 = true;
            while(true) {
                if (metal::all(loop_bound_2 == uint2(0u))) { break; }
                loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
                if (!loop_init_2) {
                    uint _e109 = r_2;
                    r_2 = _e109 + 1u;
                }
                loop_init_2 = false;
                uint _e62 = r_2;
                if (_e62 < ROWS) {
                } else {
                    break;
                }
                {
                    uint _e65 = r_2;
                    uint _e66 = group_row(group_3, _e65, params);
                    uint _e69 = params.row_bytes;
                    uint _e71 = b;
                    uint word_1 = naga_div((_e66 * _e69) + (_e71 * 20u), 4u);
                    uint scales = weights[word_1];
                    uint q = weights[(word_1 + 1u) + lane];
                    uint _e87 = q & LOW_NIBBLES;
                    packed_char4 reinterpreted_packed_char4_e87 = as_type<packed_char4>(_e87);
                    packed_char4 reinterpreted_packed_char4_e31 = as_type<packed_char4>(a_low);
                    uint _e92 = (q >> 4u) & LOW_NIBBLES;
                    packed_char4 reinterpreted_packed_char4_e92 = as_type<packed_char4>(_e92);
                    packed_char4 reinterpreted_packed_char4_e37 = as_type<packed_char4>(a_high);
                    int sum = as_type<int>(as_type<uint>(( + reinterpreted_packed_char4_e87[0] * reinterpreted_packed_char4_e31[0] + reinterpreted_packed_char4_e87[1] * reinterpreted_packed_char4_e31[1] + reinterpreted_packed_char4_e87[2] * reinterpreted_packed_char4_e31[2] + reinterpreted_packed_char4_e87[3] * reinterpreted_packed_char4_e31[3])) + as_type<uint>(( + reinterpreted_packed_char4_e92[0] * reinterpreted_packed_char4_e37[0] + reinterpreted_packed_char4_e92[1] * reinterpreted_packed_char4_e37[1] + reinterpreted_packed_char4_e92[2] * reinterpreted_packed_char4_e37[2] + reinterpreted_packed_char4_e92[3] * reinterpreted_packed_char4_e37[3])));
                    uint _e95 = r_2;
                    float _e97 = acc[_e95];
                    float _e98 = f16_bits_to_f32_(scales);
                    float _e104 = f16_bits_to_f32_(scales >> 16u);
                    acc[_e95] = _e97 + (((_e98 * d_act) * static_cast<float>(sum)) + (_e104 * s_act));
                }
            }
        }
    }
    metal::float4 _e114 = acc;
    return _e114;
}

struct main_Input {
};
[[max_total_threads_per_threadgroup(64)]] kernel void main_(
  metal::uint3 group [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, device type_2 const& weights [[user(fake0)]]
, device type_3& out [[user(fake0)]]
, constant Params& params [[user(fake0)]]
, device type_2 const& act_q [[user(fake0)]]
, device type_3 const& act_s [[user(fake0)]]
, threadgroup type_5& partial
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint stride = 32u;
    metal::float4 _e6 = row_partials(group.x, group.y, lid, weights, params, act_q, act_s, _buffer_sizes);
    partial.inner[lid] = _e6;
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    uint2 loop_bound_3 = uint2(4294967295u);
    bool loop_init_3 = true;
    while(true) {
        if (metal::all(loop_bound_3 == uint2(0u))) { break; }
        loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
        if (!loop_init_3) {
            uint _e23 = stride;
            stride = _e23 >> 1u;
        }
        loop_init_3 = false;
        uint _e9 = stride;
        if (_e9 > 0u) {
        } else {
            break;
        }
        {
            uint _e12 = stride;
            if (lid < _e12) {
                metal::float4 _e16 = partial.inner[lid];
                uint _e18 = stride;
                metal::float4 _e21 = partial.inner[lid + _e18];
                partial.inner[lid] = _e16 + _e21;
            }
            metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        }
    }
    if (lid == 0u) {
        metal::float4 _e32 = partial.inner[0];
        write_rows(group.x, group.y, _e32, out, params, _buffer_sizes);
        return;
    } else {
        return;
    }
}
