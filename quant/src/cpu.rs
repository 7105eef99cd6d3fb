//! Which SIMD level the kernels use: detected once at first use, or forced with `FENNEC_CPU`.

use std::fmt;
use std::sync::OnceLock;

/// A kernel level. Each level implies the ones below it on the same architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CpuLevel {
    /// Portable scalar Rust: the reference every other level is tested against.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL with VNNI (on top of AVX2).
    Avx512,
    /// aarch64 baseline NEON.
    Neon,
    /// aarch64 NEON with the SDOT/UDOT dot-product extension.
    Dotprod,
    /// aarch64 NEON with the SMMLA int8 matrix-multiply extension (and dotprod).
    I8mm,
}

impl CpuLevel {
    /// Every level, lowest first.
    pub const ALL: [CpuLevel; 6] = [
        Self::Scalar,
        Self::Avx2,
        Self::Avx512,
        Self::Neon,
        Self::Dotprod,
        Self::I8mm,
    ];

    /// The name used by `FENNEC_CPU`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
            Self::Neon => "neon",
            Self::Dotprod => "dotprod",
            Self::I8mm => "i8mm",
        }
    }

    /// Parses a `FENNEC_CPU` value.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this machine can run kernels of this level.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                Self::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Self::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Self::Dotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[cfg(target_arch = "aarch64")]
            Self::I8mm => {
                std::arch::is_aarch64_feature_detected!("dotprod")
                    && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best level this machine supports.
    pub fn detect() -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|l| l.is_supported())
            .unwrap_or(Self::Scalar)
    }
}

impl fmt::Display for CpuLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a `FENNEC_CPU` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuLevelError {
    /// The value names no level.
    #[error("FENNEC_CPU={0:?} is not one of scalar, avx2, avx512, neon, dotprod, i8mm")]
    Unknown(String),
    /// The level exists but this CPU cannot run it.
    #[error("FENNEC_CPU={0} is not supported by this CPU")]
    Unsupported(CpuLevel),
}

/// Resolves the level for a `FENNEC_CPU` value (`None` = detect).
pub fn resolve_level(forced: Option<&str>) -> Result<CpuLevel, CpuLevelError> {
    match forced {
        None => Ok(CpuLevel::detect()),
        Some(s) if s.trim().is_empty() => Ok(CpuLevel::detect()),
        Some(s) => {
            let level = CpuLevel::from_name(s).ok_or_else(|| CpuLevelError::Unknown(s.into()))?;
            if level.is_supported() {
                Ok(level)
            } else {
                Err(CpuLevelError::Unsupported(level))
            }
        }
    }
}

/// The level all kernels use in this process, chosen once: `FENNEC_CPU` if set and usable,
/// otherwise the best detected. An unusable `FENNEC_CPU` falls back to detection with a
/// message on stderr (a library must not abort a host app over an environment variable).
pub fn level() -> CpuLevel {
    static LEVEL: OnceLock<CpuLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let forced = std::env::var("FENNEC_CPU").ok();
        resolve_level(forced.as_deref()).unwrap_or_else(|e| {
            eprintln!("fennec: {e}; using {}", CpuLevel::detect());
            CpuLevel::detect()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_scalar_is_always_supported() {
        for l in CpuLevel::ALL {
            assert_eq!(CpuLevel::from_name(l.name()), Some(l));
        }
        assert!(CpuLevel::Scalar.is_supported());
        assert!(CpuLevel::detect().is_supported());
        assert_eq!(resolve_level(Some("scalar")), Ok(CpuLevel::Scalar));
        assert!(matches!(
            resolve_level(Some("sse9")),
            Err(CpuLevelError::Unknown(_))
        ));
    }

    #[test]
    fn other_architecture_levels_are_refused() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            resolve_level(Some("neon")),
            Err(CpuLevelError::Unsupported(CpuLevel::Neon))
        );
        #[cfg(target_arch = "aarch64")]
        assert_eq!(
            resolve_level(Some("avx2")),
            Err(CpuLevelError::Unsupported(CpuLevel::Avx2))
        );
    }
}
