//! Saving a session to a stream and restoring it: the context's inputs and only the KV cells
//! that hold them, tied to the model by its fingerprint and checked by a CRC.
//!
//! Layout (little-endian):
//!
//! | field | bytes |
//! |---|---|
//! | magic `FNSS`, format version | 4 + 4 |
//! | model fingerprint ([`Model::fingerprint`]) | 32 |
//! | KV type (0 f32, 1 f16, 2 q8_0), `n_ctx`, `n_ubatch`, layers | 1 + 8 + 8 + 4 |
//! | positions `n`, then `n` token ids | 8 + 4·n |
//! | embedding spans: count, then (start, len, offset, hash) each | 4 + 32·count |
//! | per layer: cells per layer, first saved position, count, then each cell's K and V rows | 8 + 8 + 8 + … |
//! | CRC-32 of everything before | 4 |

use std::io::{Read, Write};
use std::sync::Arc;

use super::input::EmbeddingSpan;
use super::{Session, SessionOptions, EMBEDDING_TOKEN};
use crate::error::{Error, Result};
use crate::kv_cache::KvType;
use crate::model::Model;

const MAGIC: &[u8; 4] = b"FNSS";
const VERSION: u32 = 1;

/// Reads `n` bytes at a time from the stream, feeding the CRC.
struct Reader<'r> {
    inner: &'r mut dyn Read,
    crc: crc32fast::Hasher,
}

impl Reader<'_> {
    fn bytes(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Error::CorruptSession("the file ends early (truncated)".into())
            }
            _ => Error::Io(e),
        })?;
        self.crc.update(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.bytes(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u64 count that must not exceed `max` (so nothing is allocated on a corrupt claim).
    fn count(&mut self, what: &str, max: usize) -> Result<usize> {
        let v = self.u64()?;
        if v > max as u64 {
            return Err(Error::CorruptSession(format!(
                "{what} is {v}, at most {max} fits"
            )));
        }
        Ok(v as usize)
    }
}

/// Writes to the stream, feeding the CRC.
struct Writer<'w> {
    inner: &'w mut dyn Write,
    crc: crc32fast::Hasher,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        self.crc.update(b);
        Ok(self.inner.write_all(b)?)
    }

    fn u32(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    fn u64(&mut self, v: usize) -> Result<()> {
        self.bytes(&(v as u64).to_le_bytes())
    }
}

fn kv_code(ty: KvType) -> u8 {
    match ty {
        KvType::F32 => 0,
        KvType::F16 => 1,
        KvType::Q8_0 => 2,
    }
}

fn kv_from_code(code: u8) -> Result<KvType> {
    match code {
        0 => Ok(KvType::F32),
        1 => Ok(KvType::F16),
        2 => Ok(KvType::Q8_0),
        _ => Err(Error::CorruptSession(format!(
            "unknown KV type code {code}"
        ))),
    }
}

/// The fixed part of a saved session, read before any KV data.
struct Header {
    opts: SessionOptions,
    n_layer: usize,
}

fn read_header(r: &mut Reader<'_>, model: &Model) -> Result<Header> {
    if &r.array::<4>()? != MAGIC {
        return Err(Error::CorruptSession(
            "not a Fennec session file (bad magic)".into(),
        ));
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(Error::CorruptSession(format!(
            "session format version {version}; this build reads version {VERSION}"
        )));
    }
    if r.array::<32>()? != model.fingerprint() {
        return Err(Error::SessionMismatch(
            "the session was saved with another model (fingerprints differ)".into(),
        ));
    }
    let kv_type = kv_from_code(r.array::<1>()?[0])?;
    let n_ctx = r.count("n_ctx", super::MAX_CTX)?;
    let n_ubatch = r.count("n_ubatch", super::MAX_CTX)?;
    let n_layer = r.u32()? as usize;
    if n_ctx == 0 || n_ubatch == 0 {
        return Err(Error::CorruptSession("zero n_ctx or n_ubatch".into()));
    }
    Ok(Header {
        opts: SessionOptions {
            n_ctx,
            kv_type,
            n_ubatch,
        },
        n_layer,
    })
}

impl Session {
    /// Writes the session — its inputs and the KV cells that hold them — to `out`, tied to
    /// the model's [`Model::fingerprint`]. Only occupied cells are written, so a 300-token
    /// system prompt saves as ~300 positions whatever `n_ctx` is.
    pub fn save(&self, out: &mut dyn Write) -> Result<()> {
        let kv = self.engine.cpu_kv()?;
        let mut w = Writer {
            inner: out,
            crc: crc32fast::Hasher::new(),
        };
        w.bytes(MAGIC)?;
        w.u32(VERSION)?;
        w.bytes(&self.model.fingerprint())?;
        w.bytes(&[kv_code(self.opts.kv_type)])?;
        w.u64(self.opts.n_ctx)?;
        w.u64(self.opts.n_ubatch)?;
        w.u32(kv.layers.len() as u32)?;
        let n_past = self.n_past();
        w.u64(n_past)?;
        let mut buf = Vec::new();
        for chunk in self.history.tokens.chunks(4096) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|t| t.to_le_bytes()));
            w.bytes(&buf)?;
        }
        let spans = self.embedding_spans();
        w.u32(spans.len() as u32)?;
        for s in spans {
            for v in [s.start, s.len, s.offset] {
                w.u64(v)?;
            }
            w.bytes(&s.hash.to_le_bytes())?;
        }
        for layer in &kv.layers {
            let held = layer.held_positions(n_past);
            w.u64(layer.n_cells())?;
            w.u64(held.start)?;
            w.u64(held.len())?;
            for pos in held {
                buf.clear();
                layer.save_position(pos, &mut buf);
                w.bytes(&buf)?;
            }
        }
        let crc = w.crc.clone().finalize();
        w.u32(crc)?;
        Ok(w.inner.flush()?)
    }

    /// A session restored from a stream written by [`Session::save`], with the options it
    /// was saved with.
    ///
    /// # Errors
    /// [`Error::SessionMismatch`] when it was saved with another model;
    /// [`Error::CorruptSession`] when it is truncated, damaged (CRC) or not a session file;
    /// [`Error::Io`] when reading fails.
    pub fn restore(model: Arc<Model>, input: &mut dyn Read) -> Result<Session> {
        let mut r = Reader {
            inner: input,
            crc: crc32fast::Hasher::new(),
        };
        let header = read_header(&mut r, &model)?;
        let mut session = Session::new(model, header.opts.clone())?;
        session.read_body(&mut r, &header)?;
        Ok(session)
    }

    /// Replaces this session's context with one saved by [`Session::save`]. The session must
    /// have the saved KV type and micro-batch size and room for the saved positions; on any
    /// error it is left empty, never half-restored.
    pub fn restore_into(&mut self, input: &mut dyn Read) -> Result<()> {
        let mut r = Reader {
            inner: input,
            crc: crc32fast::Hasher::new(),
        };
        let header = read_header(&mut r, &self.model)?;
        let result = self.read_body(&mut r, &header);
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn read_body(&mut self, r: &mut Reader<'_>, header: &Header) -> Result<()> {
        let saved = &header.opts;
        if saved.kv_type != self.opts.kv_type {
            return Err(Error::SessionMismatch(format!(
                "saved with a {} KV cache, this session has {}",
                saved.kv_type, self.opts.kv_type
            )));
        }
        let n_layer = self.engine.cpu_kv()?.layers.len();
        if header.n_layer != n_layer {
            return Err(Error::CorruptSession(format!(
                "{} layers saved, the model has {}",
                header.n_layer, n_layer
            )));
        }
        self.clear();
        let n_past = r.count("the position count", saved.n_ctx)?;
        if n_past > self.opts.n_ctx {
            return Err(Error::SessionMismatch(format!(
                "{n_past} positions were saved; this session holds {}",
                self.opts.n_ctx
            )));
        }
        let n_vocab = self.model.n_vocab() as u32;
        let mut word = [0u8; 4];
        for _ in 0..n_past {
            r.bytes(&mut word)?;
            let id = u32::from_le_bytes(word);
            if id >= n_vocab && id != EMBEDDING_TOKEN {
                return Err(Error::CorruptSession(format!(
                    "token id {id} is outside the vocabulary"
                )));
            }
            self.history.tokens.push(id);
        }
        let n_spans = r.u32()? as usize;
        if n_spans > n_past {
            return Err(Error::CorruptSession(format!(
                "{n_spans} spans for {n_past} positions"
            )));
        }
        let mut next_free = 0;
        for _ in 0..n_spans {
            let start = r.count("a span start", n_past)?;
            let len = r.count("a span length", n_past - start)?;
            let offset = r.count("a span offset", super::MAX_CTX)?;
            let hash = u64::from_le_bytes(r.array()?);
            let marked = self.history.tokens[start..start + len]
                .iter()
                .all(|&t| t == EMBEDDING_TOKEN);
            if start < next_free || len == 0 || !marked {
                return Err(Error::CorruptSession(
                    "embedding spans are inconsistent".into(),
                ));
            }
            next_free = start + len;
            let span = EmbeddingSpan {
                start,
                len,
                hash,
                offset,
            };
            self.history.spans.push(span);
        }
        let mut cell = Vec::new();
        for (il, layer) in self.engine.cpu_kv_mut()?.layers.iter_mut().enumerate() {
            let saved_cells = r.u64()?;
            let first = r.count("a layer's first position", n_past)?;
            let count = r.count("a layer's cell count", n_past - first)?;
            let expected = layer.held_positions(n_past);
            if saved_cells != layer.n_cells() as u64 && expected.start > 0 {
                return Err(Error::SessionMismatch(format!(
                    "layer {il} keeps a ring of {saved_cells} cells in the file and {} here \
                     (create the session with the saved n_ubatch {} and n_ctx {})",
                    layer.n_cells(),
                    saved.n_ubatch,
                    saved.n_ctx
                )));
            }
            if first + count != n_past || first > expected.start {
                return Err(Error::CorruptSession(format!(
                    "layer {il} saves positions {first}..{} of {n_past}",
                    first + count
                )));
            }
            cell.resize(layer.cell_bytes()?, 0);
            for pos in first..n_past {
                r.bytes(&mut cell)?;
                if pos >= expected.start {
                    layer.restore_position(pos, &cell);
                }
            }
        }
        let computed = r.crc.clone().finalize();
        let stored = u32::from_le_bytes(r.array()?);
        if computed != stored {
            return Err(Error::CorruptSession(format!(
                "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is damaged"
            )));
        }
        Ok(())
    }
}
