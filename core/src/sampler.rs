//! Choosing the next token from logits: penalties, top-k, top-p, min-p, temperature, seed.

use fennec_quant::rng::Rng;

/// Sampling settings. `temperature <= 0` is greedy (argmax after penalties).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerOptions {
    /// Softmax temperature; 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1 = all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one (0 = none).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// Subtract this × the count of each recent token (0 = off).
    pub frequency_penalty: f32,
    /// Subtract this once from each recent token (0 = off).
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0x5eed,
        }
    }
}

impl SamplerOptions {
    /// Greedy decoding: always the most likely token.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }
}

/// A sampler with its own random state. Its buffers are kept between calls, so sampling
/// allocates nothing once they have grown to the vocabulary.
#[derive(Clone, Debug)]
pub struct Sampler {
    opts: SamplerOptions,
    rng: Rng,
    /// `(token, logit)` of the tokens still in the running, best first once sorted.
    candidates: Vec<(u32, f32)>,
    /// Probabilities of `candidates`.
    probs: Vec<f32>,
    /// The recent tokens the penalties look at, sorted to count repeats.
    recent: Vec<u32>,
}

impl Sampler {
    /// A sampler seeded from `opts.seed`.
    pub fn new(opts: SamplerOptions) -> Self {
        let rng = Rng::new(opts.seed);
        Self {
            opts,
            rng,
            candidates: Vec::new(),
            probs: Vec::new(),
            recent: Vec::new(),
        }
    }

    /// Picks the next token from `logits` (modified in place), given the tokens so far.
    ///
    /// NaN logits are never picked (unless all are NaN); with no logits, or none that is a
    /// number, the result is token 0.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        self.apply_penalties(logits, history);
        if self.opts.temperature <= 0.0 {
            return argmax(logits);
        }
        let candidates = &mut self.candidates;
        candidates.clear();
        candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan())
                .map(|(i, &l)| (i as u32, l)),
        );
        if candidates.is_empty() {
            return 0;
        }
        // Best first; ties go to the lower id. Only the k best need sorting.
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = self.opts.top_k;
        if k > 0 && k < candidates.len() {
            candidates.select_nth_unstable_by(k - 1, order);
            candidates.truncate(k);
        }
        candidates.sort_unstable_by(order);
        let probs = &mut self.probs;
        softmax(candidates, 1.0, probs);
        let mut keep = candidates.len();
        if self.opts.top_p < 1.0 {
            let mut cum = 0.0;
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.opts.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        if self.opts.min_p > 0.0 {
            let floor = probs[0] * self.opts.min_p;
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        candidates.truncate(keep.max(1));
        softmax(candidates, self.opts.temperature, probs);
        let r = self.rng.next_f64() as f32;
        let mut cum = 0.0;
        for (&(id, _), p) in candidates.iter().zip(probs.iter()) {
            cum += p;
            if r < cum {
                return id;
            }
        }
        candidates.last().map_or(0, |c| c.0)
    }

    fn apply_penalties(&mut self, logits: &mut [f32], history: &[u32]) {
        let o = &self.opts;
        if o.repeat_penalty == 1.0 && o.frequency_penalty == 0.0 && o.presence_penalty == 0.0 {
            return;
        }
        // Each distinct recent token is penalized once, by how often it occurs.
        let recent = &mut self.recent;
        recent.clear();
        recent.extend_from_slice(&history[history.len().saturating_sub(o.penalty_last_n)..]);
        recent.sort_unstable();
        for run in recent.chunk_by(|a, b| a == b) {
            let Some(l) = logits.get_mut(run[0] as usize) else {
                continue;
            };
            if *l > 0.0 {
                *l /= o.repeat_penalty;
            } else {
                *l *= o.repeat_penalty;
            }
            *l -= run.len() as f32 * o.frequency_penalty + o.presence_penalty;
        }
    }
}

/// Index of the largest logit (the first one on ties; NaN never wins unless all are NaN;
/// 0 for no logits).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

/// The probabilities of `candidates` (sorted, best first) at `temperature`, into `probs`.
fn softmax(candidates: &[(u32, f32)], temperature: f32, probs: &mut Vec<f32>) {
    let max = candidates.first().map_or(0.0, |c| c.1);
    probs.clear();
    probs.extend(
        candidates
            .iter()
            .map(|&(_, l)| ((l - max) / temperature).exp()),
    );
    let sum: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax() {
        let mut s = Sampler::new(SamplerOptions::greedy());
        assert_eq!(s.sample(&mut [0.1, 3.0, 2.0], &[]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_seeds_repeat() {
        let opts = SamplerOptions {
            top_k: 1,
            ..SamplerOptions::default()
        };
        let mut s = Sampler::new(opts);
        for _ in 0..10 {
            assert_eq!(s.sample(&mut [0.1, 3.0, 2.9], &[]), 1);
        }
        let draw = |seed| {
            let mut s = Sampler::new(SamplerOptions {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
                ..SamplerOptions::default()
            });
            (0..20)
                .map(|_| s.sample(&mut [1.0, 1.0, 1.0, 1.0], &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(
            draw(7).iter().any(|&t| t != draw(7)[0]),
            "sampling never varies"
        );
    }

    #[test]
    fn min_p_and_top_p_cut_unlikely_tokens() {
        let opts = SamplerOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            ..SamplerOptions::default()
        };
        let mut s = Sampler::new(opts);
        for _ in 0..50 {
            // Token 2 has e^-5 of token 0's probability: below min_p.
            assert_ne!(s.sample(&mut [5.0, 4.9, 0.0], &[]), 2);
        }
        let mut s = Sampler::new(SamplerOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
            ..SamplerOptions::default()
        });
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [5.0, 1.0, 0.0], &[]), 0);
        }
    }

    #[test]
    fn penalties_push_recent_tokens_down() {
        let mut s = Sampler::new(SamplerOptions {
            repeat_penalty: 2.0,
            ..SamplerOptions::greedy()
        });
        assert_eq!(s.sample(&mut [3.0, 2.0], &[0]), 1);
        let mut s = Sampler::new(SamplerOptions {
            frequency_penalty: 1.0,
            presence_penalty: 0.5,
            ..SamplerOptions::greedy()
        });
        assert_eq!(s.sample(&mut [3.0, 1.0], &[0, 0]), 1);
    }

    #[test]
    fn empty_and_nan_logits_do_not_panic() {
        for opts in [
            SamplerOptions::greedy(),
            SamplerOptions::default(),
            SamplerOptions {
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                repeat_penalty: 1.3,
                ..SamplerOptions::default()
            },
        ] {
            let mut s = Sampler::new(opts);
            assert_eq!(s.sample(&mut [], &[1, 2]), 0);
            assert_eq!(s.sample(&mut [f32::NAN; 4], &[1]), 0);
            // NaN is never picked over a number.
            for _ in 0..20 {
                assert_eq!(s.sample(&mut [f32::NAN, 2.0, f32::NAN, -50.0], &[]), 1);
            }
        }
        assert_eq!(argmax(&[f32::NAN, 1.0, 3.0]), 2);
        assert_eq!(argmax(&[]), 0);
    }

    /// The sampler as it was before its buffers: a full sort, a map of counts, new vectors
    /// per call. The reference the buffered one must equal.
    struct Reference {
        opts: SamplerOptions,
        rng: Rng,
    }

    impl Reference {
        fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
            let o = &self.opts;
            if o.repeat_penalty != 1.0 || o.frequency_penalty != 0.0 || o.presence_penalty != 0.0 {
                let recent = &history[history.len().saturating_sub(o.penalty_last_n)..];
                let mut counts = std::collections::HashMap::<u32, usize>::new();
                for &t in recent {
                    *counts.entry(t).or_default() += 1;
                }
                for (&t, &count) in &counts {
                    let Some(l) = logits.get_mut(t as usize) else {
                        continue;
                    };
                    if *l > 0.0 {
                        *l /= o.repeat_penalty;
                    } else {
                        *l *= o.repeat_penalty;
                    }
                    *l -= count as f32 * o.frequency_penalty + o.presence_penalty;
                }
            }
            if o.temperature <= 0.0 {
                let mut best = 0;
                for (i, &l) in logits.iter().enumerate() {
                    if l > logits[best] {
                        best = i;
                    }
                }
                return best as u32;
            }
            let softmax = |c: &[(u32, f32)], t: f32| -> Vec<f32> {
                let max = c.first().map_or(0.0, |c| c.1);
                let exps: Vec<f32> = c.iter().map(|&(_, l)| ((l - max) / t).exp()).collect();
                let sum: f32 = exps.iter().sum();
                exps.into_iter().map(|e| e / sum).collect()
            };
            let mut candidates: Vec<(u32, f32)> = logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as u32, l))
                .collect();
            candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if o.top_k > 0 {
                candidates.truncate(o.top_k);
            }
            let probs = softmax(&candidates, 1.0);
            let mut keep = candidates.len();
            if o.top_p < 1.0 {
                let mut cum = 0.0;
                for (i, p) in probs.iter().enumerate() {
                    cum += p;
                    if cum >= o.top_p {
                        keep = i + 1;
                        break;
                    }
                }
            }
            if o.min_p > 0.0 {
                let floor = probs[0] * o.min_p;
                keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
            }
            candidates.truncate(keep.max(1));
            let probs = softmax(&candidates, o.temperature);
            let r = self.rng.next_f64() as f32;
            let mut cum = 0.0;
            for (&(id, _), p) in candidates.iter().zip(&probs) {
                cum += p;
                if r < cum {
                    return id;
                }
            }
            candidates.last().map_or(0, |c| c.0)
        }
    }

    #[test]
    fn equals_the_reference_on_random_logits() {
        let mut gen = Rng::new(99);
        let vocab = 3000;
        let mut checked = 0;
        for case in 0..96u64 {
            let pick = |n: u64, k: u64| (n >> (4 * k)) % 4;
            let bits = gen.next_u64();
            let opts = SamplerOptions {
                temperature: [0.0, 0.3, 0.8, 1.5][pick(bits, 0) as usize],
                top_k: [0, 1, 40, 5000][pick(bits, 1) as usize],
                top_p: [1.0, 0.95, 0.5, 0.0][pick(bits, 2) as usize],
                min_p: [0.0, 0.05, 0.3, 1.0][pick(bits, 3) as usize],
                repeat_penalty: [1.0, 1.1, 0.9, 2.0][pick(bits, 4) as usize],
                frequency_penalty: [0.0, 0.2, 0.0, 1.0][pick(bits, 5) as usize],
                presence_penalty: [0.0, 0.0, 0.5, -0.3][pick(bits, 6) as usize],
                penalty_last_n: [64, 0, 5, 1000][pick(bits, 7) as usize],
                seed: case,
            };
            let mut new = Sampler::new(opts.clone());
            let mut old = Reference {
                rng: Rng::new(opts.seed),
                opts,
            };
            let mut history: Vec<u32> = (0..40).map(|_| (gen.next_u64() % 50) as u32).collect();
            for _ in 0..12 {
                // Logits with ties and a spread like a model's.
                let logits: Vec<f32> = (0..vocab)
                    .map(|_| ((gen.next_u64() % 4000) as f32 / 200.0 - 10.0).round() / 2.0)
                    .collect();
                let (mut a, mut b) = (logits.clone(), logits);
                let got = new.sample(&mut a, &history);
                assert_eq!(got, old.sample(&mut b, &history), "case {case}");
                assert_eq!(a, b, "penalized logits, case {case}");
                history.push(got);
                checked += 1;
            }
        }
        assert_eq!(checked, 96 * 12);
    }
}
