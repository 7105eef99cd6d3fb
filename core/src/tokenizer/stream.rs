//! Incremental decoding: token ids in, complete UTF-8 text out.

use super::{Result, Tokenizer, TokenizerError};

/// Turns generated token ids into text one id at a time, holding back the bytes of a
/// character that is split across tokens until it is complete.
///
/// By default a byte sequence that can never become valid UTF-8 is an error
/// ([`TokenizerError::InvalidUtf8`]); the bad bytes are dropped and decoding can go on.
/// [`StreamDecoder::lossy`] replaces them with U+FFFD instead.
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<u8>,
    lossy: bool,
}

impl<'a> StreamDecoder<'a> {
    /// A strict decoder: invalid UTF-8 is reported as an error.
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self {
            tokenizer,
            pending: Vec::new(),
            lossy: false,
        }
    }

    /// A decoder that replaces invalid UTF-8 with U+FFFD instead of failing.
    pub fn lossy(tokenizer: &'a Tokenizer) -> Self {
        Self {
            lossy: true,
            ..Self::new(tokenizer)
        }
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.tokenizer.check(id)?;
        self.pending
            .extend_from_slice(&self.tokenizer.pieces[id as usize]);
        self.drain(false)
    }

    /// Adds raw bytes (for callers that decode tokens themselves); returns complete text.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<String> {
        self.pending.extend_from_slice(bytes);
        self.drain(false)
    }

    /// Ends the stream: returns what is left; an incomplete character at the end is an error
    /// (or U+FFFD when lossy).
    pub fn flush(&mut self) -> Result<String> {
        self.drain(true)
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    fn drain(&mut self, at_end: bool) -> Result<String> {
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return Ok(out);
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None if !at_end => {
                            self.pending.drain(..valid);
                            return Ok(out);
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
