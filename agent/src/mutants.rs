//! Mutated inputs for the parsers' property tests: a valid message with a few bytes
//! changed, cut short, or replaced by random bytes. Every parser of device answers must
//! refuse these cleanly (never panic) and never accept something it cannot re-read.

use rand::{Rng, SeedableRng};

/// `count` mutants of `valid`, the same ones for the same `seed`.
pub fn mutants(valid: &[u8], seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count).map(move |_| {
        let mut b = valid.to_vec();
        match rng.random_range(0..4) {
            0 if !b.is_empty() => {
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            }
            1 => b.truncate(rng.random_range(0..b.len() + 1)),
            2 if !b.is_empty() => {
                // A byte repeated or removed shifts every field after it.
                let i = rng.random_range(0..b.len());
                if rng.random() {
                    b.insert(i, b[i]);
                } else {
                    b.remove(i);
                }
            }
            _ => {
                let n = rng.random_range(0..2 * valid.len().max(8));
                b = (0..n).map(|_| rng.random()).collect();
            }
        }
        b
    })
}
