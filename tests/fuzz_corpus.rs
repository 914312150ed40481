//! The fuzz targets' bodies (`fuzz/bodies/`), run over every committed seed
//! (`fuzz/corpus/<target>/`) and crash reproducer (`fuzz/regressions/<target>/`),
//! so the invariants the fuzzer checks hold under plain `cargo test`, without
//! nightly or libFuzzer. `fuzz/run.sh` does the fuzzing itself.

use std::path::Path;

#[path = "../fuzz/bodies/config.rs"]
mod config;
#[path = "../fuzz/bodies/dpop.rs"]
mod dpop;
#[path = "../fuzz/bodies/extract.rs"]
mod extract;
#[path = "../fuzz/bodies/jwks.rs"]
mod jwks;
#[path = "../fuzz/bodies/jws.rs"]
mod jws;
#[path = "../fuzz/bodies/paths.rs"]
mod paths;

/// A target's body, as `fuzz_target!` calls it.
type Body = fn(&[u8]);

/// Runs `body` on every file of the target's seed corpus and regressions,
/// naming the file that fails. Returns how many seeds there were.
fn replay(target: &str, body: Body) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = 0;
    for folder in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|entry| entry.unwrap().path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(
                outcome.is_ok(),
                "{} failed its target's invariants",
                file.display()
            );
            seeds += 1;
        }
    }
    seeds
}

/// Every target's seeds and regressions, with the fewest seeds each
/// corpus should have (so a corpus that went missing fails too).
#[test]
fn every_seed_and_regression_holds() {
    let targets: [(&str, Body, usize); 6] = [
        ("extract", extract::run, 10),
        ("jws", jws::run, 10),
        ("jwks", jwks::run, 10),
        ("config", config::run, 5),
        ("paths", paths::run, 10),
        ("dpop", dpop::run, 10),
    ];
    for (target, body, fewest) in targets {
        let seeds = replay(target, body);
        assert!(seeds >= fewest, "{target}: only {seeds} seeds");
    }
}

/// The oracle behind the `jws` target only speaks when a token verifies:
/// each valid seed must, with exactly its own provider.
#[test]
fn valid_jws_seeds_verify() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/jws");
    for alg in ["RS256", "ES256", "EdDSA"] {
        for name in [format!("valid-{alg}"), format!("valid-{alg}-no-kid")] {
            let token = std::fs::read(folder.join(&name)).unwrap();
            assert_eq!(jws::verifications(&token), 1, "{name}");
        }
        // RFC 7515 §4: unknown header members of any JSON type are ignored.
        let odd = std::fs::read(folder.join(format!("valid-{alg}-unknown-members"))).unwrap();
        assert_eq!(jws::verifications(&odd), 1, "valid-{alg}-unknown-members");
        let expired = std::fs::read(folder.join(format!("{alg}-expired"))).unwrap();
        assert_eq!(jws::verifications(&expired), 0, "{alg}-expired");
    }
}

/// The oracle behind the `dpop` target only speaks when a proof is
/// accepted: each valid seed must be, and each spoiled variant not.
#[test]
fn valid_dpop_seeds_are_accepted() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dpop");
    let read = |name: &str| std::fs::read(folder.join(name)).unwrap();
    for alg in ["ES256", "RS256", "EdDSA"] {
        for name in [format!("valid-{alg}"), format!("{alg}-unknown-members")] {
            assert!(dpop::accepts(&read(&name)), "{name}");
        }
        for spoiled in ["truncated-signature", "wrong-typ", "wrong-htu", "stale"] {
            let name = format!("{alg}-{spoiled}");
            assert!(!dpop::accepts(&read(&name)), "{name}");
        }
    }
    for name in ["alg-none", "private-jwk", "two-proofs"] {
        assert!(!dpop::accepts(&read(name)), "{name}");
    }
}
