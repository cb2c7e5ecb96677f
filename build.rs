//! Compiles `proto/refunds/v1/*.proto` without a system `protoc`: protox parses the files into
//! a descriptor set, tonic-prost-build generates the messages, server and client from it, and
//! the encoded set is written to `OUT_DIR` for gRPC server reflection (prost-build only writes
//! it itself when it runs protoc).

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "proto/refunds/v1/money.proto",
    "proto/refunds/v1/refund.proto",
    "proto/refunds/v1/payment.proto",
    "proto/refunds/v1/provider.proto",
    "proto/refunds/v1/refund_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds these; a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=src/store/sqlite/migrations");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("refunds_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
