//! `--prompt-cache FILE`: a session saved after the prompt, restored by later runs so only
//! what is new in their prompt is evaluated (llama.cpp's flag of the same name).
//!
//! The cache is an optimisation and never changes the output: a missing file is a first
//! run, a damaged one or one from another model or session shape is ignored with a warning
//! (and overwritten), and a failed write only warns.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fennec_core::Session;

/// The prompt-cache flags shared by `run` and `chat`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PromptCacheArgs {
    /// Save the session after the prompt to FILE and restore it on later runs, evaluating
    /// only the part of the prompt that differs from the cached one.
    #[arg(long = "prompt-cache", value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// Use the --prompt-cache file but never write it.
    #[arg(long = "prompt-cache-ro", requires = "path")]
    pub read_only: bool,
}

/// An open prompt cache: where it lives and whether it may be written.
#[derive(Clone, Debug)]
pub struct PromptCache {
    path: PathBuf,
    read_only: bool,
}

impl PromptCache {
    /// The cache the flags ask for, if any.
    pub fn from_args(args: &PromptCacheArgs) -> Option<Self> {
        args.path.as_ref().map(|path| Self {
            path: path.clone(),
            read_only: args.read_only,
        })
    }

    /// Restores the cache into `session` and returns the positions it holds (0 when there
    /// is no file yet, or when it cannot be used: then a warning names why and the session
    /// is left empty).
    pub fn load(&self, session: &mut Session) -> usize {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
            Err(e) => {
                self.warn_ignored("io", &e);
                return 0;
            }
        };
        match session.restore_into(&mut BufReader::new(file)) {
            Ok(()) => session.n_past(),
            Err(e) => {
                session.clear();
                self.warn_ignored(e.kind().as_str(), &e);
                0
            }
        }
    }

    /// Writes `session` to the cache file (unless read-only) through a temporary file in
    /// the same directory renamed over it, so a crash never leaves half a file. A failure
    /// is a warning: the run's output does not depend on the cache.
    pub fn save(&self, session: &Session) {
        if self.read_only {
            return;
        }
        if let Err(e) = write_atomically(&self.path, session) {
            eprintln!(
                "fennec: warning: cannot write prompt cache {}: {e:#}",
                self.path.display()
            );
        }
    }

    fn warn_ignored(&self, kind: &str, error: &dyn std::fmt::Display) {
        eprintln!(
            "fennec: warning: ignoring prompt cache {} ({kind}: {error}); recomputing the prompt",
            self.path.display()
        );
    }
}

/// Saves `session` to a temporary sibling of `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, session: &Session) -> Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| -> Result<()> {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = BufWriter::new(file);
        session.save(&mut out)?;
        out.flush()?;
        out.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `dir/.name.<pid>.tmp` next to `path`: same file system, so the rename is atomic.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "prompt-cache".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_sits_next_to_the_cache() {
        let tmp = temp_sibling(Path::new("/some/dir/prompt.bin"));
        assert_eq!(tmp.parent(), Some(Path::new("/some/dir")));
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".prompt.bin.") && name.ends_with(".tmp"),
            "{name}"
        );
    }
}
