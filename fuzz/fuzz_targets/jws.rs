//! libFuzzer entry for the `jws` target; the body (and its invariants) is
//! `bodies/jws.rs`, which `tests/fuzz_corpus.rs` replays under `cargo test`.
#![no_main]

#[path = "../bodies/jws.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
