//! `matmul` throughput per weight type and CPU level on SmolLM2's FFN shape (1536 rows ×
//! 576 columns; K-quants 2048), for one activation row (decode) and 512 (prefill), in multiply-adds per
//! second (criterion's "elements": rows × columns × vectors). One thread; compare with the
//! machine's int8 peak (AVX2: two `vpmaddubsw` of 32 products per cycle per core) and, for
//! one vector, with its memory bandwidth (the weights are cache-resident here).
//!
//! Row-lane types run twice: on weights stored as rows (`row-lane`) and on weights
//! repacked into panels at load (`panels`).
//!
//! `cargo bench -p fennec-quant --bench matmul` (filter with e.g. `-- Q4_1/512`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fennec_quant::matmul::{
    arithmetic, can_repack, matmul_at, repack, ActivationBatch, OutputTile, WeightLayout,
};
use fennec_quant::rng::Rng;
use fennec_quant::{quantize_row, row_bytes, CpuLevel, GgmlType};

const ROWS: usize = 1536;
const COLS: usize = 576;
/// Columns for the 256-wide K-quant blocks: eight super-blocks per row, so per-row costs
/// weigh as they do on real rows (Scout's have 20 and 32), still cache-resident.
const K_COLS: usize = 2048;

fn bench_matmul(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    let levels: Vec<CpuLevel> = CpuLevel::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ] {
        let cols = if ty.block_len() == 256 { K_COLS } else { COLS };
        let w_f32: Vec<f32> = (0..ROWS * cols).map(|_| rng.next_f32() - 0.5).collect();
        let mut w = vec![0u8; ROWS * row_bytes(ty, cols).expect("whole blocks")];
        quantize_row(ty, &w_f32, &mut w).expect("quantize");
        let mut panels = w.clone();
        let layouts: &[WeightLayout] = if can_repack(ty) {
            repack(ty, cols, &mut panels).expect("repack");
            &[WeightLayout::Rows, WeightLayout::Panels]
        } else {
            &[WeightLayout::Rows]
        };
        for n_vecs in [1, 512] {
            let x: Vec<f32> = (0..n_vecs * cols)
                .map(|_| rng.next_f32() * 4.0 - 2.0)
                .collect();
            let acts = ActivationBatch::quantize(ty, cols, &x).expect("activations");
            let mut out = vec![0f32; ROWS * n_vecs];
            let mut group = c.benchmark_group(format!("matmul/{ty}/{n_vecs}"));
            group.throughput(Throughput::Elements((ROWS * cols * n_vecs) as u64));
            if n_vecs > 1 {
                group.sample_size(10);
            }
            for &level in &levels {
                for &layout in layouts {
                    let (name, bytes) = match layout {
                        WeightLayout::Rows => (arithmetic(level, ty), &w),
                        WeightLayout::Panels => ("panels", &panels),
                    };
                    let id = BenchmarkId::new(name, level);
                    group.bench_function(id, |b| {
                        b.iter(|| {
                            let mut tile =
                                OutputTile::whole(&mut out, ROWS, ROWS, n_vecs).expect("tile");
                            matmul_at(level, ty, layout, cols, bytes, &acts, &mut tile)
                                .expect("matmul");
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
