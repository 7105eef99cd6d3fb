//! vec_dot throughput per weight type and per CPU level this machine supports, in GB/s of
//! weight bytes, on rows of 4096 elements.
//!
//! `cargo bench -p fennec-quant --bench vec_dot` (filter with e.g. `-- Q4_K`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fennec_quant::dot::{activation_type, kernel};
use fennec_quant::{quantize_row, row_bytes, CpuLevel, GgmlType};

/// Elements per row.
const N: usize = 4096;

/// The weight types with a dot kernel.
const WEIGHT_TYPES: [GgmlType; 15] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Iq4Nl,
    GgmlType::Iq4Xs,
];

/// A deterministic pseudo-random row in [-1, 1).
fn row(seed: u32) -> Vec<f32> {
    (0..N as u32)
        .map(|i| {
            (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as f32 / u32::MAX as f32
                * 2.0
                - 1.0
        })
        .collect()
}

fn quantized(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; row_bytes(ty, x.len()).expect("whole blocks")];
    quantize_row(ty, x, &mut q).expect("supported type");
    q
}

fn bench_vec_dot(c: &mut Criterion) {
    let levels: Vec<CpuLevel> = CpuLevel::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    for ty in WEIGHT_TYPES {
        let a_ty = activation_type(ty).expect("paired type");
        let w = quantized(ty, &row(1));
        let a = quantized(a_ty, &row(2));
        let mut group = c.benchmark_group(format!("vec_dot/{ty}"));
        group.throughput(Throughput::Bytes(w.len() as u64));
        for &level in &levels {
            let dot = kernel(level, ty).expect("kernel");
            group.bench_function(BenchmarkId::from_parameter(level), |b| {
                b.iter(|| dot(N, std::hint::black_box(&w), std::hint::black_box(&a)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_vec_dot);
criterion_main!(benches);
