//! Incremental decoding: token ids in, complete UTF-8 text out.

use std::sync::Arc;

use super::{Result, Tokenizer, TokenizerError};

/// Turns generated token ids into text one id at a time, holding back the bytes of a
/// character that is split across tokens until it is complete.
///
/// By default a byte sequence that can never become valid UTF-8 is an error
/// ([`TokenizerError::InvalidUtf8`]); the bad bytes are dropped and decoding can go on.
/// [`StreamDecoder::lossy`] replaces them with U+FFFD instead.
///
/// The decoder owns a handle to its tokenizer, so it can outlive the borrow of a model and
/// move to another thread.
#[derive(Clone, Debug)]
pub struct StreamDecoder {
    tokenizer: Arc<Tokenizer>,
    pending: Vec<u8>,
    lossy: bool,
}

impl StreamDecoder {
    /// A strict decoder: invalid UTF-8 is reported as an error.
    pub fn new(tokenizer: Arc<Tokenizer>) -> Self {
        // Room for the longest token plus an incomplete character, so pushing never
        // reallocates.
        let capacity = tokenizer.longest_piece + 4;
        Self {
            tokenizer,
            pending: Vec::with_capacity(capacity),
            lossy: false,
        }
    }

    /// A decoder that replaces invalid UTF-8 with U+FFFD instead of failing.
    pub fn lossy(tokenizer: Arc<Tokenizer>) -> Self {
        Self {
            lossy: true,
            ..Self::new(tokenizer)
        }
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        let mut out = String::new();
        self.push_into(id, &mut out)?;
        Ok(out)
    }

    /// Adds one token and appends the text that is now complete to `out` (no allocation
    /// once `out` and the decoder have grown to their working size).
    pub fn push_into(&mut self, id: u32, out: &mut String) -> Result<()> {
        self.tokenizer.check(id)?;
        self.pending
            .extend_from_slice(&self.tokenizer.pieces[id as usize]);
        self.drain_into(false, out)
    }

    /// Adds raw bytes (for callers that decode tokens themselves); returns complete text.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        self.drain_into(false, &mut out)?;
        Ok(out)
    }

    /// Ends the stream: returns what is left; an incomplete character at the end is an error
    /// (or U+FFFD when lossy).
    pub fn flush(&mut self) -> Result<String> {
        let mut out = String::new();
        self.drain_into(true, &mut out)?;
        Ok(out)
    }

    /// Forgets held-back bytes (to start a new stream with the same tokenizer).
    pub fn reset(&mut self) {
        self.pending.clear();
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    fn drain_into(&mut self, at_end: bool, out: &mut String) -> Result<()> {
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return Ok(());
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None if !at_end => {
                            self.pending.drain(..valid);
                            return Ok(());
                        }
                        bad => {
                            let n = bad.unwrap_or(self.pending.len() - valid);
                            let bytes: Vec<u8> = self.pending[valid..valid + n].to_vec();
                            self.pending.drain(..valid + n);
                            if self.lossy {
                                out.push('\u{FFFD}');
                            } else {
                                return Err(TokenizerError::InvalidUtf8 { bytes });
                            }
                        }
                    }
                }
            }
        }
    }
}
