// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
    uint size2;
};

struct QuantizeParams {
    uint n_blocks;
    uint groups_x;
    uint pad0_;
    uint pad1_;
};
typedef float type_2[1];
typedef uint type_3[1];

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
    uint bits = as_type<uint>(x);
    uint sign_1 = (bits >> 16u) & 32768u;
    uint magnitude_1 = bits & 2147483647u;
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

uint block_index(
    metal::uint3 id_3,
    constant QuantizeParams& qparams
) {
    uint _e5 = qparams.groups_x;
    return id_3.x + ((id_3.y * _e5) * 64u);
}

metal::int4 naga_f2i32(metal::float4 value) {
    return static_cast<metal::int4>(metal::clamp(value, -2147483600.0, 2147483500.0));
}

uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

metal::float2 quantize_q8_block(
    uint base,
    device type_2 const& x_2,
    device type_3& act_q,
    constant _mslBufferSizes& _buffer_sizes
) {
    float amax_1 = 0.0;
    uint i_1 = 0u;
    int sum_1 = 0;
    uint w_1 = 0u;
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e17 = i_1;
            i_1 = _e17 + 1u;
        }
        loop_init = false;
        uint _e5 = i_1;
        if (_e5 < 32u) {
        } else {
            break;
        }
        {
            float _e8 = amax_1;
            uint _e10 = i_1;
            float _e13 = x_2[base + _e10];
            amax_1 = metal::max(_e8, metal::abs(_e13));
        }
    }
    float _e19 = amax_1;
    float _e22 = amax_1;
    float inverse = (_e22 != 0.0) ? (127.0 / _e19) : 0.0;
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e75 = w_1;
            w_1 = _e75 + 1u;
        }
        loop_init_1 = false;
        uint _e31 = w_1;
        if (_e31 < 8u) {
        } else {
            break;
        }
        {
            uint _e35 = w_1;
            uint at = base + (4u * _e35);
            float _e40 = x_2[at];
            float _e45 = x_2[at + 1u];
            float _e50 = x_2[at + 2u];
            float _e55 = x_2[at + 3u];
            metal::float4 v = metal::float4(_e40, _e45, _e50, _e55);
            metal::int4 q = naga_f2i32(metal::rint(v * inverse));
            int _e60 = sum_1;
            sum_1 = as_type<int>(as_type<uint>(_e60) + as_type<uint>(as_type<int>(as_type<uint>(as_type<int>(as_type<uint>(as_type<int>(as_type<uint>(q.x) + as_type<uint>(q.y))) + as_type<uint>(q.z))) + as_type<uint>(q.w))));
            act_q[naga_div(at, 4u)] = as_type<uint>(packed_char4(q));
        }
    }
    float _e77 = amax_1;
    int _e80 = sum_1;
    return metal::float2(_e77 / 127.0, static_cast<float>(_e80));
}

struct quantize_q8_0_Input {
};
[[max_total_threads_per_threadgroup(64)]] kernel void quantize_q8_0_(
  metal::uint3 id [[thread_position_in_grid]]
, device type_2 const& x_2 [[user(fake0)]]
, device type_3& act_q [[user(fake0)]]
, device type_2& act_s [[user(fake0)]]
, constant QuantizeParams& qparams [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e1 = block_index(id, qparams);
    uint _e4 = qparams.n_blocks;
    if (_e1 >= _e4) {
        return;
    }
    metal::float2 _e8 = quantize_q8_block(_e1 * 32u, x_2, act_q, _buffer_sizes);
    float _e12 = round_to_f16_(_e8.x);
    act_s[_e1] = _e12;
    return;
}


struct quantize_q8_1_Input {
};
[[max_total_threads_per_threadgroup(64)]] kernel void quantize_q8_1_(
  metal::uint3 id_1 [[thread_position_in_grid]]
, device type_2 const& x_2 [[user(fake0)]]
, device type_3& act_q [[user(fake0)]]
, device type_2& act_s [[user(fake0)]]
, constant QuantizeParams& qparams [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e1 = block_index(id_1, qparams);
    uint _e4 = qparams.n_blocks;
    if (_e1 >= _e4) {
        return;
    }
    metal::float2 _e8 = quantize_q8_block(_e1 * 32u, x_2, act_q, _buffer_sizes);
    float _e14 = round_to_f16_(_e8.x);
    act_s[2u * _e1] = _e14;
    float _e24 = round_to_f16_(_e8.x * _e8.y);
    act_s[(2u * _e1) + 1u] = _e24;
    return;
}


struct quantize_q8_kInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void quantize_q8_k(
  metal::uint3 id_2 [[thread_position_in_grid]]
, device type_2 const& x_2 [[user(fake0)]]
, device type_3& act_q [[user(fake0)]]
, device type_2& act_s [[user(fake0)]]
, constant QuantizeParams& qparams [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    float amax = 0.0;
    float signed_max = 0.0;
    uint i = 0u;
    uint j = 0u;
    int sum = {};
    uint w = {};
    uint _e1 = block_index(id_2, qparams);
    uint _e4 = qparams.n_blocks;
    if (_e1 >= _e4) {
        return;
    }
    uint base_1 = _e1 * 256u;
    uint2 loop_bound_2 = uint2(4294967295u);
    bool loop_init_2 = true;
    while(true) {
        if (metal::all(loop_bound_2 == uint2(0u))) { break; }
        loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
        if (!loop_init_2) {
            uint _e27 = i;
            i = _e27 + 1u;
        }
        loop_init_2 = false;
        uint _e14 = i;
        if (_e14 < 256u) {
        } else {
            break;
        }
        {
            uint _e18 = i;
            float v_1 = x_2[base_1 + _e18];
            float _e23 = amax;
            if (metal::abs(v_1) > _e23) {
                amax = metal::abs(v_1);
                signed_max = v_1;
            }
        }
    }
    float _e29 = signed_max;
    float _e32 = amax;
    float iscale = (_e32 != 0.0) ? (-127.0 / _e29) : 0.0;
    uint2 loop_bound_3 = uint2(4294967295u);
    bool loop_init_3 = true;
    while(true) {
        if (metal::all(loop_bound_3 == uint2(0u))) { break; }
        loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
        if (!loop_init_3) {
            uint _e110 = j;
            j = _e110 + 1u;
        }
        loop_init_3 = false;
        uint _e39 = j;
        if (_e39 < 16u) {
        } else {
            break;
        }
        {
            sum = 0;
            w = 0u;
            uint2 loop_bound_4 = uint2(4294967295u);
            bool loop_init_4 = true;
            while(true) {
                if (metal::all(loop_bound_4 == uint2(0u))) { break; }
                loop_bound_4 -= uint2(loop_bound_4.y == 0u, 1u);
                if (!loop_init_4) {
                    uint _e97 = w;
                    w = _e97 + 1u;
                }
                loop_init_4 = false;
                uint _e46 = w;
                if (_e46 < 4u) {
                } else {
                    break;
                }
                {
                    uint _e50 = j;
                    uint _e54 = w;
                    uint at_1 = (base_1 + (16u * _e50)) + (4u * _e54);
                    float _e59 = x_2[at_1];
                    float _e64 = x_2[at_1 + 1u];
                    float _e69 = x_2[at_1 + 2u];
                    float _e74 = x_2[at_1 + 3u];
                    metal::float4 v_2 = metal::float4(_e59, _e64, _e69, _e74);
                    metal::int4 q_1 = metal::min(naga_f2i32(metal::rint(v_2 * iscale)), metal::int4(127));
                    int _e82 = sum;
                    sum = as_type<int>(as_type<uint>(_e82) + as_type<uint>(as_type<int>(as_type<uint>(as_type<int>(as_type<uint>(as_type<int>(as_type<uint>(q_1.x) + as_type<uint>(q_1.y))) + as_type<uint>(q_1.z))) + as_type<uint>(q_1.w))));
                    act_q[naga_div(at_1, 4u)] = as_type<uint>(packed_char4(q_1));
                }
            }
            uint _e104 = j;
            int _e107 = sum;
            act_s[((17u * _e1) + 1u) + _e104] = static_cast<float>(_e107);
        }
    }
    float _e118 = amax;
    act_s[17u * _e1] = (_e118 != 0.0) ? (1.0 / iscale) : 0.0;
    return;
}
