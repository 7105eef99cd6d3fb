// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
    uint size2;
};

struct StoreParams {
    uint n_rows;
    uint row_len;
    uint groups_x;
    uint pad;
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
uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

uint naga_mod(uint lhs, uint rhs) {
    return lhs % metal::select(rhs, 1u, rhs == 0u);
}


struct kv_storeInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void kv_store(
  metal::uint3 id [[thread_position_in_grid]]
, device type_2 const& rows [[user(fake0)]]
, device type_3& cache [[user(fake0)]]
, device type_3 const& cells [[user(fake0)]]
, constant StoreParams& sp [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e3 = sp.row_len;
    uint pairs = naga_div(_e3, 2u);
    uint _e10 = sp.groups_x;
    uint index = id.x + ((id.y * _e10) * 64u);
    uint _e17 = sp.n_rows;
    if (index >= (_e17 * pairs)) {
        return;
    }
    uint row = naga_div(index, pairs);
    uint pair = naga_mod(index, pairs);
    uint _e25 = sp.row_len;
    float _e31 = rows[(row * _e25) + (2u * pair)];
    uint _e32 = f32_to_f16_bits(_e31);
    uint _e36 = sp.row_len;
    float _e44 = rows[((row * _e36) + (2u * pair)) + 1u];
    uint _e45 = f32_to_f16_bits(_e44);
    uint _e49 = cells[row];
    cache[(_e49 * pairs) + pair] = _e32 | (_e45 << 16u);
    return;
}
