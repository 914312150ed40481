//! libFuzzer entry for the `jwks` target; the body (and its invariants) is
//! `bodies/jwks.rs`, which `tests/fuzz_corpus.rs` replays under `cargo test`.
#![no_main]

#[path = "../bodies/jwks.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
