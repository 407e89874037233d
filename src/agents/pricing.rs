//! What a model call cost: tokens × the price of the model per million tokens. A provider's
//! own `prices` win over the defaults here; a model priced nowhere costs 0 and is reported as
//! unpriced (its tokens are still recorded), with a warning.

use crate::agents::providers::Usage;
use crate::domain::provider::{ModelPrice, Prices, ProviderKind};

/// List prices (USD per million tokens) of current models, matched by exact name or as the
/// prefix of a dated name (`claude-sonnet-4-5-20250929` is `claude-sonnet-4-5`).
const DEFAULTS: &[(&str, f64, f64)] = &[
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4-5", 3.0, 15.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("gpt-5-nano", 0.05, 0.4),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5", 1.25, 10.0),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4o", 2.5, 10.0),
    ("o4-mini", 1.1, 4.4),
    ("o3", 2.0, 8.0),
];

/// Cache reads cost this share of the input price, cache writes this multiple (Anthropic's
/// published ratios; OpenAI's cached input is cheaper still, so this never under-charges).
const CACHE_READ_FACTOR: f64 = 0.1;
const CACHE_WRITE_FACTOR: f64 = 1.25;

/// The price of `model`: the provider's table first, then the defaults (longest matching
/// prefix). The simulated provider is free.
pub fn price_of(kind: ProviderKind, prices: &Prices, model: &str) -> Option<ModelPrice> {
    if kind == ProviderKind::Simulated && !prices.contains_key(model) {
        return Some(ModelPrice {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
        });
    }
    if let Some(p) = prices.get(model) {
        return Some(*p);
    }
    DEFAULTS
        .iter()
        .filter(|(name, _, _)| {
            model == *name
                || model
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('@'))
        })
        .max_by_key(|(name, _, _)| name.len())
        .map(|&(_, input, output)| ModelPrice {
            input_per_mtok: input,
            output_per_mtok: output,
        })
}

/// The cost of one call in micro-dollars (rounded up: never under-charge a budget).
pub fn cost_micros(price: ModelPrice, usage: &Usage) -> i64 {
    // $/Mtok × tokens = micro-dollars.
    let micros = price.input_per_mtok * usage.input_tokens as f64
        + price.output_per_mtok * usage.output_tokens as f64
        + price.input_per_mtok * CACHE_READ_FACTOR * usage.cache_read_tokens as f64
        + price.input_per_mtok * CACHE_WRITE_FACTOR * usage.cache_write_tokens as f64;
    micros.ceil() as i64
}

/// The most a call can cost with at most `input_tokens` in (priced as cache writes, the
/// dearest input) and `output_tokens` out, micro-dollars.
pub fn upper_bound_micros(price: ModelPrice, input_tokens: u64, output_tokens: u64) -> i64 {
    let micros = price.input_per_mtok * CACHE_WRITE_FACTOR * input_tokens as f64
        + price.output_per_mtok * output_tokens as f64;
    micros.ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn dated_names_match_their_family_and_the_longest_prefix_wins() {
        let p = price_of(
            ProviderKind::Anthropic,
            &Prices::new(),
            "claude-sonnet-4-5-20250929",
        )
        .unwrap();
        assert_eq!(p.input_per_mtok, 3.0);
        let mini = price_of(
            ProviderKind::Openai,
            &Prices::new(),
            "gpt-4o-mini-2024-07-18",
        )
        .unwrap();
        assert_eq!(mini.input_per_mtok, 0.15);
        assert!(price_of(ProviderKind::Openai, &Prices::new(), "gpt-4ox").is_none());
        assert!(price_of(ProviderKind::Openai, &Prices::new(), "llama3.1:8b").is_none());
    }

    #[test]
    fn provider_prices_override_the_defaults() {
        let mut prices = Prices::new();
        prices.insert(
            "gpt-4o".into(),
            ModelPrice {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
            },
        );
        let p = price_of(ProviderKind::Openai, &prices, "gpt-4o").unwrap();
        assert_eq!(cost_micros(p, &usage(1_000_000, 500_000)), 2_000_000);
    }

    #[test]
    fn costs_are_micro_dollars_rounded_up() {
        let p = ModelPrice {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        };
        assert_eq!(cost_micros(p, &usage(1000, 100)), 4500);
        assert_eq!(cost_micros(p, &usage(1, 0)), 3);
        let cached = Usage {
            cache_read_tokens: 1_000_000,
            cache_write_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(cost_micros(p, &cached), 300_000 + 3_750_000);
        assert_eq!(
            price_of(ProviderKind::Simulated, &Prices::new(), "anything")
                .map(|p| cost_micros(p, &usage(10, 10))),
            Some(0)
        );
    }
}
