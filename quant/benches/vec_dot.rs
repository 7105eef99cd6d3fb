//! vec_dot throughput per weight type and per CPU level this machine supports, in GB/s of
//! weight bytes, on rows of 4096 elements.
//!
//! `cargo bench -p fennec-quant --bench vec_dot` (filter with e.g. `-- Q4_K`).
//!
//! The `multi/…` groups time one weight row against eight activation rows: eight calls of
//! the single-row kernel (`single`) against one call of the 8-wide and two of the 4-wide
//! multi-vector kernels (`multi8`, `multi4`), where the level has them; throughput is
//! weight bytes times eight.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fennec_quant::dot::{activation_type, kernel, kernel_multi4, kernel_multi8, widen_scales};
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

/// The weight types to time against eight activation rows.
const MULTI_TYPES: [GgmlType; 9] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Iq4Nl,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q3K,
];

fn bench_multi(c: &mut Criterion) {
    let levels: Vec<CpuLevel> = CpuLevel::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    for ty in MULTI_TYPES {
        let a_ty = activation_type(ty).expect("paired type");
        let w = quantized(ty, &row(1));
        let acts: Vec<Vec<u8>> = (0..8).map(|k| quantized(a_ty, &row(10 + k))).collect();
        let scales: Vec<Vec<f32>> = acts
            .iter()
            .map(|a| {
                let mut s = Vec::new();
                widen_scales(a_ty, N, a, &mut s);
                s
            })
            .collect();
        let a8: [&[u8]; 8] = std::array::from_fn(|k| acts[k].as_slice());
        let s8: [&[f32]; 8] = std::array::from_fn(|k| scales[k].as_slice());
        let mut group = c.benchmark_group(format!("multi/{ty}"));
        group.throughput(Throughput::Bytes(8 * w.len() as u64));
        for &level in &levels {
            let dot = kernel(level, ty).expect("kernel");
            group.bench_function(BenchmarkId::new("single", level), |b| {
                b.iter(|| {
                    let w = std::hint::black_box(&w);
                    a8.map(|a| dot(N, w, std::hint::black_box(a)))
                })
            });
            if let Some(multi) = kernel_multi8(level, ty) {
                group.bench_function(BenchmarkId::new("multi8", level), |b| {
                    b.iter(|| multi(N, std::hint::black_box(&w), a8, s8))
                });
            }
            if let Some(multi) = kernel_multi4(level, ty) {
                let (lo, hi) = (
                    (
                        std::array::from_fn(|k| a8[k]),
                        std::array::from_fn(|k| s8[k]),
                    ),
                    (
                        std::array::from_fn(|k| a8[4 + k]),
                        std::array::from_fn(|k| s8[4 + k]),
                    ),
                );
                group.bench_function(BenchmarkId::new("multi4", level), |b| {
                    b.iter(|| {
                        let w = std::hint::black_box(&w);
                        [multi(N, w, lo.0, lo.1), multi(N, w, hi.0, hi.1)]
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_vec_dot, bench_multi);
criterion_main!(benches);
