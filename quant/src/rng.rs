//! A small seedable pseudo-random generator for tests, benchmarks and synthetic weights.
//!
//! Not cryptographic. The same seed gives the same numbers on every platform.

/// How a [`Rng`] steps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// SplitMix64 (Steele, Lea, Flood): any state, zero included.
    SplitMix64,
    /// xorshift64* (shifts 12, 25, 27; the output is the state times 0x2545F4914F6CDD1D);
    /// the state must not be zero.
    XorShift64Star,
    /// Plain xorshift64 (shifts 13, 7, 17), output the state; the state must not be zero.
    XorShift64,
}

/// One `u64` of state and the rule that steps it; every draw derives from [`Rng::next_u64`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng {
    /// The current state.
    pub state: u64,
    /// The stepping rule.
    pub stream: Stream,
}

impl Rng {
    /// SplitMix64 started at `seed`: the generator to use unless an older stream must be kept.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            stream: Stream::SplitMix64,
        }
    }

    /// xorshift64* started at `state` (which must not be zero).
    pub fn xorshift64star(state: u64) -> Self {
        Self {
            state,
            stream: Stream::XorShift64Star,
        }
    }

    /// Plain xorshift64 started at `state` (which must not be zero).
    pub fn xorshift64(state: u64) -> Self {
        Self {
            state,
            stream: Stream::XorShift64,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        match self.stream {
            Stream::SplitMix64 => {
                self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            Stream::XorShift64Star => {
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
            }
            Stream::XorShift64 => {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                self.state
            }
        }
    }

    /// A random byte: the top 8 bits of [`Rng::next_u64`].
    pub fn next_u8(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// Uniform in `[0, 1)` on a grid of 2^-24: the top 24 bits of [`Rng::next_u64`].
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[0, 1)` on a grid of 2^-53: the top 53 bits of [`Rng::next_u64`].
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In `0..n` (`n` > 0): [`Rng::next_u64`] modulo `n`, with its slight bias to small values.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // The first outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn xorshift_streams_step_their_state() {
        let mut r = Rng::xorshift64(1);
        assert_eq!(r.next_u64(), 0x4082_2041);
        assert_eq!(r.state, 0x4082_2041);
        let mut r = Rng::xorshift64star(1);
        assert_eq!(r.next_u64(), 0x47e4_ce4b_896c_dd1d);
        assert_eq!(r.state, 0x0200_0001);
    }

    #[test]
    fn floats_stay_in_the_unit_interval() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            assert!((0.0..1.0).contains(&r.next_f32()));
            assert!((0.0..1.0).contains(&r.next_f64()));
            assert!(r.below(10) < 10);
        }
    }
}
