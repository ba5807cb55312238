//! Basalt's versioned protobuf API, package `basalt.v1`.
//!
//! The `.proto` sources live in `proto/basalt/v1/`. Rust code for them is generated at build
//! time (pure Rust, no system `protoc`) once the gRPC services are served; until then this crate
//! only carries the sources, exposed here for tooling.

/// The `.proto` sources of `basalt.v1`, as (file name, contents).
pub const PROTO_SOURCES: &[(&str, &str)] = &[(
    "basalt/v1/common.proto",
    include_str!("../basalt/v1/common.proto"),
)];
