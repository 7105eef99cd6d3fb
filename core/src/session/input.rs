//! What a session evaluates — token ids or rows of embeddings — and the history it keeps of
//! them, so rewinding, prefix reuse and penalties work whatever the input was.

use crate::error::{try_vec, Error, Result};

/// The id a session records at positions that came from [`Input::Embeddings`]: outside every
/// vocabulary, so samplers and penalties ignore it.
pub const EMBEDDING_TOKEN: u32 = u32::MAX;

/// One piece of input to a session.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Input<'a> {
    /// Token ids, embedded by the model's token-embedding matrix.
    Tokens(&'a [u32]),
    /// `n` rows of `n_embd` floats fed to the first layer as they are (e.g. projected image
    /// patches), one position each.
    Embeddings {
        /// The rows, back to back.
        data: &'a [f32],
        /// Number of rows.
        n: usize,
    },
}

impl<'a> From<&'a [u32]> for Input<'a> {
    fn from(ids: &'a [u32]) -> Self {
        Input::Tokens(ids)
    }
}

impl<'a> From<&'a Vec<u32>> for Input<'a> {
    fn from(ids: &'a Vec<u32>) -> Self {
        Input::Tokens(ids)
    }
}

impl<'a> Input<'a> {
    /// Positions this input takes in the context.
    pub fn len(&self) -> usize {
        match *self {
            Input::Tokens(ids) => ids.len(),
            Input::Embeddings { n, .. } => n,
        }
    }

    /// Whether it takes no position.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions all of `inputs` take.
    pub fn total_len(inputs: &[Input<'_>]) -> Result<usize> {
        inputs.iter().try_fold(0usize, |acc, i| {
            acc.checked_add(i.len())
                .ok_or_else(|| Error::InvalidArgument("input length overflows".into()))
        })
    }

    /// `inputs` without their first `n` positions (what is left to evaluate after
    /// [`crate::Session::reuse_prefix`] kept `n`).
    pub fn skip(inputs: &[Input<'a>], n: usize) -> Vec<Input<'a>> {
        let total: usize = inputs.iter().map(Input::len).sum();
        let rest = total.saturating_sub(n);
        Input::segments(inputs, n.min(total), rest)
            .map(|(_, _, piece)| piece)
            .collect()
    }

    /// Positions `from..from + len` of this input.
    fn slice(&self, from: usize, len: usize) -> Input<'a> {
        match *self {
            Input::Tokens(ids) => Input::Tokens(&ids[from..from + len]),
            Input::Embeddings { data, n } => {
                let d = data.len() / n.max(1);
                Input::Embeddings {
                    data: &data[from * d..(from + len) * d],
                    n: len,
                }
            }
        }
    }

    /// The pieces covering positions `first..first + n` of `inputs`, each with the index
    /// of the input it comes from and its offset in that input.
    pub(crate) fn segments<'s>(
        inputs: &'s [Input<'a>],
        first: usize,
        n: usize,
    ) -> impl Iterator<Item = (usize, usize, Input<'a>)> + 's {
        let end = first + n;
        let mut start = 0;
        inputs.iter().enumerate().filter_map(move |(i, input)| {
            let (lo, hi) = (start, start + input.len());
            start = hi;
            let (from, to) = (first.max(lo), end.min(hi));
            (from < to).then(|| (i, from - lo, input.slice(from - lo, to - from)))
        })
    }

    /// A hash of the embedding rows (0 for tokens), identifying an image in the history.
    pub(crate) fn content_hash(&self) -> u64 {
        match *self {
            Input::Tokens(_) => 0,
            Input::Embeddings { data, .. } => hash_floats(data),
        }
    }
}

/// A 64-bit hash of the bit patterns of `data` (not cryptographic; tells images apart).
fn hash_floats(data: &[f32]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ data.len() as u64;
    for pair in data.chunks(2) {
        let lo = u64::from(pair[0].to_bits());
        let hi = pair.get(1).map_or(0, |v| u64::from(v.to_bits()));
        h = (h ^ (lo | hi << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    h
}

/// A run of context positions that came from one [`Input::Embeddings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EmbeddingSpan {
    /// First position in the context.
    pub start: usize,
    /// Positions.
    pub len: usize,
    /// [`Input::content_hash`] of the whole input the rows came from.
    pub hash: u64,
    /// Row of that input at `start`.
    pub offset: usize,
}

/// What a session's context holds, position by position.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// One id per position ([`EMBEDDING_TOKEN`] for embedding rows).
    pub tokens: Vec<u32>,
    /// Where embedding rows are, in order.
    pub spans: Vec<EmbeddingSpan>,
}

impl History {
    pub(crate) fn clear(&mut self) {
        self.tokens.clear();
        self.spans.clear();
    }

    pub(crate) fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
        self.spans.retain(|s| s.start < n);
        if let Some(last) = self.spans.last_mut() {
            last.len = last.len.min(n - last.start);
        }
    }

    /// Records positions `first..first + n` of `inputs` (just evaluated); `hashes[i]` is the
    /// content hash of `inputs[i]`.
    pub(crate) fn push_batch(
        &mut self,
        inputs: &[Input<'_>],
        hashes: &[u64],
        first: usize,
        n: usize,
    ) {
        for (i, offset, piece) in Input::segments(inputs, first, n) {
            match piece {
                Input::Tokens(ids) => self.tokens.extend_from_slice(ids),
                Input::Embeddings { n, .. } => {
                    let start = self.tokens.len();
                    self.tokens.extend(std::iter::repeat_n(EMBEDDING_TOKEN, n));
                    let hash = hashes[i];
                    match self.spans.last_mut() {
                        Some(s)
                            if s.hash == hash
                                && s.start + s.len == start
                                && s.offset + s.len == offset =>
                        {
                            s.len += n
                        }
                        _ => self.spans.push(EmbeddingSpan {
                            start,
                            len: n,
                            hash,
                            offset,
                        }),
                    }
                }
            }
        }
    }

    /// How many leading positions equal those of `inputs`: same ids, and embedding rows of
    /// the same input (by content hash) at the same row.
    pub(crate) fn common_prefix(&self, inputs: &[Input<'_>]) -> usize {
        let mut pos = 0;
        for input in inputs {
            match *input {
                Input::Tokens(ids) => {
                    for &id in ids {
                        if self.tokens.get(pos) != Some(&id) || id == EMBEDDING_TOKEN {
                            return pos;
                        }
                        pos += 1;
                    }
                }
                Input::Embeddings { n, .. } => {
                    let hash = input.content_hash();
                    for row in 0..n {
                        let same = self
                            .span_at(pos)
                            .is_some_and(|s| s.hash == hash && s.offset + (pos - s.start) == row);
                        if !same {
                            return pos;
                        }
                        pos += 1;
                    }
                }
            }
        }
        pos
    }

    fn span_at(&self, pos: usize) -> Option<&EmbeddingSpan> {
        self.spans
            .iter()
            .find(|s| (s.start..s.start + s.len).contains(&pos))
    }

    pub(crate) fn try_clone(&self) -> Result<Self> {
        let mut tokens = try_vec(self.tokens.len(), 0, "token history")?;
        tokens.copy_from_slice(&self.tokens);
        Ok(Self {
            tokens,
            spans: self.spans.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_cuts_across_inputs_and_embedding_rows() {
        let ids = [1, 2, 3];
        let rows = [0.5f32; 8];
        let inputs = [
            Input::Tokens(&ids),
            Input::Embeddings { data: &rows, n: 4 },
            Input::Tokens(&ids),
        ];
        let rest = Input::skip(&inputs, 5);
        assert_eq!(Input::total_len(&rest).unwrap(), 5);
        assert_eq!(
            rest[0],
            Input::Embeddings {
                data: &rows[4..],
                n: 2
            }
        );
        assert_eq!(rest[1], Input::Tokens(&ids));
        assert!(Input::skip(&inputs, 100).is_empty());
    }

    #[test]
    fn history_matches_prefixes_by_id_and_image() {
        let img_a = [1.0f32, 2.0, 3.0, 4.0];
        let img_b = [1.0f32, 2.0, 3.0, 5.0];
        let ids = [7, 8];
        let a = [
            Input::Tokens(&ids),
            Input::Embeddings { data: &img_a, n: 2 },
        ];
        let hashes: Vec<u64> = a.iter().map(Input::content_hash).collect();
        let mut h = History::default();
        // Evaluated in two micro-batches that split the image.
        h.push_batch(&a, &hashes, 0, 3);
        h.push_batch(&a, &hashes, 3, 1);
        assert_eq!(h.tokens, [7, 8, EMBEDDING_TOKEN, EMBEDDING_TOKEN]);
        assert_eq!(h.spans.len(), 1);
        assert_eq!(h.common_prefix(&a), 4);
        let b = [
            Input::Tokens(&ids),
            Input::Embeddings { data: &img_b, n: 2 },
        ];
        assert_eq!(h.common_prefix(&b), 2);
        assert_eq!(h.common_prefix(&[Input::Tokens(&[7, 9])]), 1);
        h.truncate(3);
        assert_eq!(h.spans[0].len, 1);
        assert_eq!(h.common_prefix(&a), 3);
    }
}
