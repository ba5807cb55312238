//! Generate Rust code for `basalt.v1` with a pure-Rust protobuf compiler (protox): no system
//! `protoc` is needed. The encoded descriptor set is kept for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "basalt/v1/common.proto",
    "basalt/v1/query.proto",
    "basalt/v1/ingest.proto",
    "basalt/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("basalt_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // A pushed Arrow IPC stream is decoded in place, not copied out of the request.
        .bytes(".basalt.v1.PushRequest")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
