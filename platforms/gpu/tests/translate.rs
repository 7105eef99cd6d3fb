//! Every WGSL kernel parses, validates and translates with naga to SPIR-V (Vulkan) and to
//! MSL (Metal), with no GPU: Metal regressions show here without a Mac. The MSL is kept as
//! snapshots under `tests/msl/` so review sees what Metal will compile; rewrite them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p fennec-gpu --test translate`.

use std::path::PathBuf;

use naga::valid::{Capabilities, ValidationFlags, Validator};

/// The lowest MSL the kernels target: Metal 2.3 (iOS 14, macOS 11) has `simd_sum`.
const MSL_VERSION: (u8, u8) = (2, 3);

fn validate(name: &str, source: &str, subgroups: bool) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    // Only what the device is asked for: subgroup operations, and only for those kernels.
    let capabilities = if subgroups {
        Capabilities::SUBGROUP
    } else {
        Capabilities::empty()
    };
    let info = Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    (module, info)
}

#[test]
fn every_kernel_translates_to_spirv() {
    for (name, source, subgroups) in fennec_gpu::kernels::all_sources() {
        let (module, info) = validate(&name, &source, subgroups);
        let options = naga::back::spv::Options {
            lang_version: (1, 3),
            ..Default::default()
        };
        let words = naga::back::spv::write_vec(&module, &info, &options, None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
        assert_eq!(words.first(), Some(&0x0723_0203), "{name}: SPIR-V magic");
    }
}

#[test]
fn every_kernel_translates_to_msl_as_its_snapshot() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/msl");
    let update = std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1");
    let mut stale = Vec::new();
    for (name, source, subgroups) in fennec_gpu::kernels::all_sources() {
        let (module, info) = validate(&name, &source, subgroups);
        let options = naga::back::msl::Options {
            lang_version: MSL_VERSION,
            fake_missing_bindings: true,
            // The kernels write their workgroup memory before reading it.
            zero_initialize_workgroup_memory: false,
            ..Default::default()
        };
        let (msl, _) = naga::back::msl::write_string(&module, &info, &options, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));
        let path = dir.join(format!("{name}.metal"));
        if update {
            std::fs::write(&path, &msl).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(msl.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "MSL differs from its snapshot for {stale:?}: review, then rerun with UPDATE_SNAPSHOTS=1"
    );
}
