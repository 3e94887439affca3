//! Ansible's `random` and `shuffle` filters. With `seed` the result is the same on every run
//! (Ansible seeds Python's generator; kiln seeds its own, so the picks differ from Ansible's
//! but are just as repeatable); without, the operating system's randomness is used.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};
use sha2::{Digest, Sha256};

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// A small generator (SplitMix64): plenty for picking and shuffling, and seedable.
struct Generator(u64);

impl Generator {
    fn new(seed: Option<Value>) -> Result<Self, Error> {
        match seed {
            Some(seed) if !seed.is_none() && !seed.is_undefined() => {
                let digest = Sha256::digest(seed.to_string().as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                Ok(Self(u64::from_le_bytes(first)))
            }
            _ => {
                let mut bytes = [0u8; 8];
                getrandom::getrandom(&mut bytes)
                    .map_err(|e| invalid(format!("no randomness available: {e}")))?;
                Ok(Self(u64::from_le_bytes(bytes)))
            }
        }
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Python's `randrange(start, stop, step)`.
fn randrange(rng: &mut Generator, start: i64, stop: i64, step: i64) -> Result<i64, Error> {
    if step == 0 {
        return Err(invalid("random: step must not be zero"));
    }
    let (start, stop, step) = (i128::from(start), i128::from(stop), i128::from(step));
    let count = if step > 0 {
        (stop - start + step - 1) / step
    } else {
        (stop - start + step + 1) / step
    };
    if count <= 0 {
        return Err(invalid(format!(
            "random: empty range ({start}, {stop}, {step})"
        )));
    }
    let count = u64::try_from(count).map_err(|_| invalid("random: range too large"))?;
    let picked = start + step * i128::from(rng.below(count));
    i64::try_from(picked).map_err(|_| invalid("random: range too large"))
}

/// `random(end, start=None, step=None, seed=None)`: a number in `start..end` by `step`, or
/// one element of a sequence.
pub fn random(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let start: Option<i64> = kwargs.get("start")?;
    let step: Option<i64> = kwargs.get("step")?;
    let seed: Option<Value> = kwargs.get("seed")?;
    kwargs.assert_all_used()?;
    let mut rng = Generator::new(seed)?;
    if value.kind() == ValueKind::Number && value.is_integer() {
        let end = i64::try_from(value).map_err(|e| invalid(e.to_string()))?;
        // Ansible treats 0 as "not given", like None.
        let start = start.filter(|s| *s != 0).unwrap_or(0);
        let step = step.filter(|s| *s != 0).unwrap_or(1);
        return randrange(&mut rng, start, end, step).map(Value::from);
    }
    if start.is_some_and(|s| s != 0) || step.is_some_and(|s| s != 0) {
        return Err(invalid(
            "random: start and step can only be used with integer values",
        ));
    }
    let items = elements(&value)
        .ok_or_else(|| invalid("random can only be used on sequences and integers"))?;
    if items.is_empty() {
        return Err(invalid("random: cannot choose from an empty sequence"));
    }
    let index = usize::try_from(rng.below(items.len() as u64))
        .map_err(|_| invalid("random: sequence too large"))?;
    Ok(items[index].clone())
}

/// `shuffle(seed=None)`: the elements in random order; anything that is not a sequence is
/// returned as it is.
pub fn shuffle(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let seed: Option<Value> = kwargs.get("seed")?;
    kwargs.assert_all_used()?;
    let Some(mut items) = elements(&value) else {
        return Ok(value);
    };
    let mut rng = Generator::new(seed)?;
    // Python's shuffle: Fisher–Yates from the end.
    for i in (1..items.len()).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1))
            .map_err(|_| invalid("shuffle: sequence too large"))?;
        items.swap(i, j);
    }
    Ok(Value::from(items))
}

/// The elements Python's `list(value)` would give: a string's characters, a mapping's keys.
fn elements(value: &Value) -> Option<Vec<Value>> {
    if let Some(text) = value.as_str() {
        return Some(text.chars().map(|c| Value::from(c.to_string())).collect());
    }
    match value.kind() {
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            value.try_iter().ok().map(|items| items.collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_filter("random", random);
        env.add_filter("shuffle", shuffle);
        env.render_str(source, ()).expect("renders")
    }

    #[test]
    fn random_picks_in_range_with_start_and_step() {
        for _ in 0..50 {
            let n: i64 = render("{{ 10 | random(start=3, step=2) }}")
                .parse()
                .expect("a number");
            assert!([3, 5, 7, 9].contains(&n), "{n}");
            let n: i64 = render("{{ 3 | random }}").parse().expect("a number");
            assert!((0..3).contains(&n), "{n}");
        }
        let item = render("{{ ['a', 'b', 'c'] | random }}");
        assert!(["a", "b", "c"].contains(&item.as_str()), "{item}");
    }

    #[test]
    fn a_seed_makes_random_and_shuffle_repeatable() {
        let pick = "{{ 1000000 | random(seed='web1') }}";
        assert_eq!(render(pick), render(pick));
        assert_ne!(render(pick), render("{{ 1000000 | random(seed='web2') }}"));
        let order = "{{ range(20) | shuffle(seed='web1') | join(',') }}";
        assert_eq!(render(order), render(order));
        let mut shuffled: Vec<u32> = render(order)
            .split(',')
            .map(|n| n.parse().expect("a number"))
            .collect();
        assert_ne!(shuffled, (0..20).collect::<Vec<_>>());
        shuffled.sort_unstable();
        assert_eq!(shuffled, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn random_refuses_what_ansible_refuses() {
        let mut env = minijinja::Environment::new();
        env.add_filter("random", random);
        for bad in [
            "{{ 0 | random }}",
            "{{ [] | random }}",
            "{{ none | random }}",
            "{{ [1] | random(start=1) }}",
        ] {
            assert!(env.render_str(bad, ()).is_err(), "{bad}");
        }
        assert_eq!(render("{{ 5 | shuffle }}"), "5");
    }
}
