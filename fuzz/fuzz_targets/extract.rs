//! libFuzzer entry for the `extract` target; the body (and its invariants) is
//! `bodies/extract.rs`, which `tests/fuzz_corpus.rs` replays under `cargo test`.
#![no_main]

#[path = "../bodies/extract.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
