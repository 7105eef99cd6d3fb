//! The self-test catches a kernel built wrong (injected), falls back to the other reduction
//! or refuses the type, and remembers its verdicts per adapter and driver.

mod common;

use fennec_gpu::{GpuError, GpuOptions, Reduction, WgpuBackend};
use fennec_quant::GgmlType;

fn with_faults(faults: &[&str]) -> GpuOptions {
    GpuOptions {
        inject_faults: faults.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn a_wrong_subgroup_kernel_falls_back_to_shared_memory() {
    let Some(gpu) = common::open(&with_faults(&["matvec_q4_1_subgroup"])) else {
        return;
    };
    if !gpu.has_subgroups() {
        return;
    }
    assert_eq!(
        gpu.verified_reduction(GgmlType::Q4_1).unwrap(),
        Reduction::Shared
    );
    assert_eq!(
        gpu.verified_reduction(GgmlType::Q8_0).unwrap(),
        Reduction::Subgroup
    );
}

#[test]
fn a_type_whose_kernels_are_wrong_is_refused() {
    let faults = with_faults(&["matvec_q4_k_subgroup", "matvec_q4_k_shared"]);
    let Some(gpu) = common::open(&faults) else {
        return;
    };
    let e = gpu.verified_reduction(GgmlType::Q4K).unwrap_err();
    assert!(matches!(e, GpuError::SelfTest { .. }), "{e}");
    assert!(e.to_string().contains("matvec_q4_k"), "{e}");
    // Every other type still runs.
    for ty in fennec_gpu::kernels::MATVEC_TYPES
        .into_iter()
        .filter(|&t| t != GgmlType::Q4K)
    {
        gpu.verified_reduction(ty).unwrap();
    }
}

#[test]
fn wrong_row_operations_disable_the_backend() {
    if common::gpu().is_none() {
        return;
    }
    let e = WgpuBackend::new(&with_faults(&["rms_norm"])).unwrap_err();
    assert!(
        matches!(e, GpuError::SelfTest { ref kernel, .. } if kernel == "row_ops"),
        "{e}"
    );
    WgpuBackend::new(&GpuOptions::default()).unwrap();
}

#[test]
fn verdicts_are_remembered_per_adapter_and_driver() {
    if common::gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("fennec-gpu-verdicts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = GpuOptions {
        cache_dir: Some(dir.clone()),
        ..Default::default()
    };
    let first = common::open(&options).unwrap();
    first.verified_reduction(GgmlType::Q8_0).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("gpu-selftest-"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("matvec_q8_0_"), "{text}");
    // A remembered failure is not tested again: the type stays refused.
    let failed: String = ["subgroup", "shared"]
        .iter()
        .map(|r| format!("matvec_q8_0_{r} failed\n"))
        .collect();
    std::fs::write(&files[0], failed).unwrap();
    // The second device also starts from the first one's pipeline cache, where Vulkan has one.
    let second = common::open(&options).unwrap();
    let e = second.verified_reduction(GgmlType::Q8_0).unwrap_err();
    assert!(e.to_string().contains("before"), "{e}");
    assert_eq!(
        second.verified_reduction(GgmlType::Q4_0).unwrap(),
        second.default_reduction()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
