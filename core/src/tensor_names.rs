//! The tensor names of the `llama` and `llama4` GGUF architectures, as llama.cpp's converter
//! spells them.
//!
//! Whole-model tensors are named by a constant; a layer's tensor is [`blk`] of the layer's
//! index and a per-layer constant: `blk(3, ATTN_Q)` is `"blk.3.attn_q.weight"`.

/// Token embedding matrix (one row of `n_embd` per token).
pub const TOKEN_EMBD: &str = "token_embd.weight";
/// RMSNorm weight applied before the output projection.
pub const OUTPUT_NORM: &str = "output_norm.weight";
/// Output projection to the vocabulary (absent when tied to [`TOKEN_EMBD`]).
pub const OUTPUT: &str = "output.weight";
/// RoPE frequency divisors (llama3-style rope scaling), F32.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// Per layer: RMSNorm weight before attention.
pub const ATTN_NORM: &str = "attn_norm.weight";
/// Per layer: query projection.
pub const ATTN_Q: &str = "attn_q.weight";
/// Per layer: key projection.
pub const ATTN_K: &str = "attn_k.weight";
/// Per layer: value projection.
pub const ATTN_V: &str = "attn_v.weight";
/// Per layer: attention output projection.
pub const ATTN_OUTPUT: &str = "attn_output.weight";
/// Per layer, optional (`llama`): query bias.
pub const ATTN_Q_BIAS: &str = "attn_q.bias";
/// Per layer, optional (`llama`): key bias.
pub const ATTN_K_BIAS: &str = "attn_k.bias";
/// Per layer, optional (`llama`): value bias.
pub const ATTN_V_BIAS: &str = "attn_v.bias";
/// Per layer, optional (`llama`): attention output bias.
pub const ATTN_OUTPUT_BIAS: &str = "attn_output.bias";
/// Per layer: RMSNorm weight before the feed-forward network.
pub const FFN_NORM: &str = "ffn_norm.weight";
/// Per dense layer: SwiGLU gate projection.
pub const FFN_GATE: &str = "ffn_gate.weight";
/// Per dense layer: SwiGLU up projection.
pub const FFN_UP: &str = "ffn_up.weight";
/// Per dense layer: SwiGLU down projection.
pub const FFN_DOWN: &str = "ffn_down.weight";
/// Per MoE layer (`llama4`): router, one row of `n_embd` per expert.
pub const FFN_GATE_INP: &str = "ffn_gate_inp.weight";
/// Per MoE layer (`llama4`): routed experts' gate projections, stacked.
pub const FFN_GATE_EXPS: &str = "ffn_gate_exps.weight";
/// Per MoE layer (`llama4`): routed experts' up projections, stacked.
pub const FFN_UP_EXPS: &str = "ffn_up_exps.weight";
/// Per MoE layer (`llama4`): routed experts' down projections, stacked.
pub const FFN_DOWN_EXPS: &str = "ffn_down_exps.weight";
/// Per MoE layer (`llama4`): shared expert's gate projection.
pub const FFN_GATE_SHEXP: &str = "ffn_gate_shexp.weight";
/// Per MoE layer (`llama4`): shared expert's up projection.
pub const FFN_UP_SHEXP: &str = "ffn_up_shexp.weight";
/// Per MoE layer (`llama4`): shared expert's down projection.
pub const FFN_DOWN_SHEXP: &str = "ffn_down_shexp.weight";

/// The name of layer `il`'s tensor `tensor` (a per-layer constant): `blk.{il}.{tensor}`.
pub fn blk(il: usize, tensor: &str) -> String {
    format!("blk.{il}.{tensor}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_are_prefixed_with_blk_and_the_index() {
        assert_eq!(blk(3, ATTN_Q), "blk.3.attn_q.weight");
        assert_eq!(blk(47, FFN_DOWN_EXPS), "blk.47.ffn_down_exps.weight");
    }
}
