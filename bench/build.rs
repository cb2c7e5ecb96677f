//! Compiles the baseline's `proto/bench/v1/baseline.proto` without a system `protoc` (protox
//! parses it, tonic-prost-build generates the messages, client and server), as the gateway's
//! own build script does for its API.

const PROTO: &str = "proto/bench/v1/baseline.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // refcounted, so the broadcast's copies of one event share the filler
        .bytes(".bench.v1.RefundEvent.padding")
        .compile_fds(fds)?;
    Ok(())
}
