//! Compiles `proto/` into the file descriptor set that gRPC server reflection
//! serves, so `grpcurl` can call `Check` without local proto files.
//!
//! protox is a pure-Rust protobuf compiler: no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .include_source_info(false)
        .open_files(["envoy/service/auth/v3/external_auth.proto"])?
        .encode_file_descriptor_set();
    let out = PathBuf::from(env::var("OUT_DIR")?).join("ext_authz_descriptor.bin");
    fs::write(out, descriptors)?;
    Ok(())
}
