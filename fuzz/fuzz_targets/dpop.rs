//! libFuzzer entry for the `dpop` target; the body (and its invariants) is
//! `bodies/dpop.rs`, which `tests/fuzz_corpus.rs` replays under `cargo test`.
#![no_main]

#[path = "../bodies/dpop.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
