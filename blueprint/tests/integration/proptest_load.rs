//! Property tests of blueprint loading: no input panics or escapes the resource limits, every
//! rejection is positioned inside the file, and a valid blueprint means the same whatever its
//! layout (key order, flow or block style).
//!
//! Case counts are bounded so that `make test` stays quick.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::{Path, PathBuf};

use ballast_blueprint::{Blueprint, Diagnostics, parse};
use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2048,
        // A failure prints its shrunk input; no regression files beside the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every diagnostic points at a line and column of the text it came from.
fn assert_positioned(source: &str, diagnostics: &Diagnostics) -> Result<(), TestCaseError> {
    // YAML breaks lines at `\n`, `\r\n` and a lone `\r`.
    let lines = source
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .count();
    prop_assert!(!diagnostics.items.is_empty(), "rejected without a reason");
    for d in &diagnostics.items {
        prop_assert!(d.position.line >= 1 && d.position.column >= 1, "{d:?}");
        prop_assert!(
            d.position.line <= lines + 1,
            "line {} of a {lines}-line text: {d:?}",
            d.position.line
        );
        prop_assert!(!d.message.is_empty());
    }
    Ok(())
}

/// Tokens that exercise YAML's syntax: indicators, anchors and aliases, tags, quoting, block
/// scalars, document markers, and the blueprint's own keys.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "\n",
            "\n  ",
            "\n    ",
            "  ",
            ": ",
            "- ",
            "? ",
            ",",
            "[",
            "]",
            "{",
            "}",
            "&a ",
            "&b ",
            "*a",
            "*b",
            "!!str ",
            "!tag ",
            "'",
            "\"",
            "|\n  ",
            ">-\n  ",
            "# c\n",
            "---\n",
            "...\n",
            "%YAML 1.2\n",
            "<<: ",
            "~",
            "null",
            "true",
            "yes",
            "0x1F",
            "1e3",
            "-1",
            "\t",
            "\\",
            "\u{feff}",
            "\u{0}",
            "é",
            "apiVersion: ballast.dev/v1\n",
            "kind: Blueprint\n",
            "metadata:\n  name: x\n  region: us-east-1\n",
            "spec:\n",
            "  queues:\n    - name: q\n",
            "visibilityTimeout: 30s",
            "60s",
            "5m",
            "14d",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9_.-]{1,8}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

/// Aliases nested `depth` deep, `width` uses per level: the "billion laughs" family.
fn alias_bomb(depth: usize, width: usize) -> String {
    let mut text = String::from("a0: &a0 [\"lol\"]\n");
    for level in 1..=depth {
        let uses = vec![format!("*a{}", level - 1); width].join(",");
        text.push_str(&format!("a{level}: &a{level} [{uses}]\n"));
    }
    text
}

/// The blueprint as the language writes it. `Blueprint` serializes decimals (alarm thresholds)
/// as strings (rust_decimal's `serde-str`), where the language wants a number: write those back
/// as exact JSON numbers.
fn as_written(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("threshold", Value::String(text)) => {
                        let number = serde_json::from_str(&text).unwrap_or(Value::String(text));
                        (k, number)
                    }
                    (_, v) => (k, as_written(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(as_written).collect()),
        other => other,
    }
}

/// The value in YAML block style (scalars as JSON text, which YAML reads the same).
fn block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let child = |prefix: String, v: &Value, out: &mut String| match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(&format!("{prefix}\n"));
            block(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str(&format!("{prefix}\n"));
            block(v, indent + 2, out);
        }
        scalar => out.push_str(&format!("{prefix} {scalar}\n")),
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                child(format!("{pad}{}:", Value::from(k.as_str())), v, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                child(format!("{pad}-"), v, out);
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
    }
}

/// The same JSON value with every object's keys in a shuffled order.
fn shuffled(value: &Value, seed: &mut u64) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            // A small LCG drives a Fisher-Yates shuffle; proptest picks the seed.
            for i in (1..entries.len()).rev() {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let j = usize::try_from(*seed >> 33).unwrap_or(0) % (i + 1);
                entries.swap(i, j);
            }
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), shuffled(v, seed)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| shuffled(v, seed)).collect()),
        other => other.clone(),
    }
}

fn shipped() -> Vec<Blueprint> {
    ["blueprints/banking.yaml", "blueprints/minimal.yaml"]
        .iter()
        .map(|f| {
            ballast_blueprint::load(&root().join(f))
                .unwrap_or_else(|e| panic!("{f}: {e}"))
                .blueprint
        })
        .collect()
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_text_never_panics_and_rejections_are_positioned(text in ".{0,300}") {
        if let Err(d) = parse("p.yaml", &text) {
            assert_positioned(&text, &d)?;
        }
    }

    #[test]
    fn yaml_like_text_never_panics_and_rejections_are_positioned(text in yamlish()) {
        if let Err(d) = parse("p.yaml", &text) {
            assert_positioned(&text, &d)?;
        }
    }
}

proptest! {
    // Each case parses a whole shipped blueprint (milliseconds in a debug build).
    #![proptest_config(config(200))]

    #[test]
    fn a_damaged_shipped_blueprint_never_panics(
        cut in 0..6100usize,
        insert in prop::sample::select(vec!["", "\n", ":", "- ", "[", "&x ", "*x", "'", "\t", "  "]),
        which in 0..2usize,
    ) {
        let file = ["blueprints/banking.yaml", "blueprints/minimal.yaml"][which];
        let source = std::fs::read_to_string(root().join(file))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut at = cut.min(source.len());
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let text = format!("{}{insert}{}", &source[..at], &source[at..]);
        if let Err(d) = parse(file, &text) {
            assert_positioned(&text, &d)?;
        }
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn alias_expansion_is_bounded(depth in 1..12usize, width in 1..12usize) {
        let text = alias_bomb(depth, width);
        let started = std::time::Instant::now();
        let result = parse("bomb.yaml", &text);
        // Each level multiplies the copies by `width`; the parse stops at the budget either way.
        prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let expanded = (0..=depth).fold(0f64, |acc, level| acc + (width as f64).powi(level as i32));
        let diagnostics = result.err().ok_or_else(|| TestCaseError::fail("not a blueprint, yet accepted"))?;
        let refused_for_size = diagnostics
            .items
            .iter()
            .any(|d| d.message.contains("expands to more than"));
        if expanded > 2.0 * ballast_blueprint::MAX_NODES as f64 {
            prop_assert!(refused_for_size, "{diagnostics}");
        }
        if expanded * 3.0 < ballast_blueprint::MAX_NODES as f64 {
            prop_assert!(!refused_for_size, "{diagnostics}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow(depth in 1..400usize, flow in any::<bool>()) {
        let text = if flow {
            format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            (0..depth).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect::<String>()
        };
        if let Err(d) = parse("deep.yaml", &text) {
            assert_positioned(&text, &d)?;
        }
    }

    #[test]
    fn a_valid_blueprint_means_the_same_in_any_layout(seed in any::<u64>(), which in 0..2usize, pretty in any::<bool>()) {
        let blueprint = &shipped()[which];
        let value = as_written(
            serde_json::to_value(blueprint).map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
        let mut state = seed;
        let reordered = shuffled(&value, &mut state);
        // JSON is YAML in flow style; `block` writes the same value in block style.
        let flow = if pretty {
            serde_json::to_string_pretty(&reordered)
        } else {
            serde_json::to_string(&reordered)
        }
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut block_style = String::new();
        block(&reordered, 0, &mut block_style);
        for text in [flow, block_style] {
            let loaded = parse("layout.yaml", &text)
                .map_err(|d| TestCaseError::fail(format!("{d}\n{text}")))?;
            prop_assert_eq!(&loaded.blueprint, blueprint);
        }
    }
}
