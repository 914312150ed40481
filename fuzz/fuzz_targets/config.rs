//! libFuzzer entry for the `config` target; the body (and its invariants) is
//! `bodies/config.rs`, which `tests/fuzz_corpus.rs` replays under `cargo test`.
#![no_main]

#[path = "../bodies/config.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
