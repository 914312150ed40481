//! libFuzzer entry for the `paths` target; the body (and its invariants) is
//! `bodies/paths.rs`, which `tests/fuzz_corpus.rs` replays under `cargo test`.
#![no_main]

#[path = "../bodies/paths.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
