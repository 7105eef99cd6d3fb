//! Flags that steer where MoE expert weights live (ignored by models without experts).

use fennec_core::Model;
use fennec_core::{ExpertAdvice, ExpertResidencyOptions, DEFAULT_EXPERT_LOOKAHEAD};

/// `--expert-cache-mb`, `--expert-advice` and `--expert-lookahead`.
#[derive(clap::Args, Clone, Debug)]
pub struct ExpertArgs {
    /// MB of the most-used experts to pin in RAM (0 = none; the rest page from the file).
    #[arg(long = "expert-cache-mb", default_value_t = 0)]
    pub cache_mb: u64,
    /// madvise hint for routed experts: willneed, sequential, random or none.
    #[arg(long = "expert-advice", default_value = "willneed")]
    pub advice: ExpertAdvice,
    /// MoE layers ahead whose experts are predicted from the hidden state and read from the
    /// file in the background while earlier layers compute (0 = off).
    #[arg(long = "expert-lookahead", default_value_t = DEFAULT_EXPERT_LOOKAHEAD)]
    pub lookahead: usize,
}

impl ExpertArgs {
    /// Applies the flags to a loaded model.
    pub fn apply(&self, model: &Model) {
        model.set_expert_residency(ExpertResidencyOptions {
            advice: self.advice,
            cache_bytes: self.cache_mb << 20,
            lookahead: self.lookahead,
        });
    }
}
