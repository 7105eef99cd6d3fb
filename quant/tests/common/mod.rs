//! Helpers shared by the SIMD test binaries.

use fennec_quant::CpuLevel;

/// Asserts that `supported` (the SIMD levels this CPU runs, in order) equals the
/// comma-separated list in `FENNEC_EXPECT_LEVELS`, when that variable is set and not empty;
/// scripts set it so that a level silently missing (and so skipped) fails the run.
pub fn assert_expected_levels(supported: &[CpuLevel]) {
    let got: Vec<&str> = supported.iter().map(|l| l.name()).collect();
    eprintln!(
        "supported SIMD levels: [{}], detected {}",
        got.join(","),
        CpuLevel::detect()
    );
    if let Some(want) = std::env::var("FENNEC_EXPECT_LEVELS")
        .ok()
        .filter(|w| !w.trim().is_empty())
    {
        let want: Vec<&str> = want.split(',').map(str::trim).collect();
        assert_eq!(
            got, want,
            "FENNEC_EXPECT_LEVELS names the levels this CPU must run"
        );
    }
}
