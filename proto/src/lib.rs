//! Basalt's versioned protobuf API, package `basalt.v1`: the gRPC services `QueryService`,
//! `IngestService` and `AdminService` and their messages.
//!
//! The `.proto` sources live in `proto/basalt/v1/`; Rust code is generated at build time by a
//! pure-Rust compiler (no system `protoc`).

#![allow(missing_docs, clippy::all, missing_debug_implementations)]

/// Package `basalt.v1`.
pub mod v1 {
    tonic::include_proto!("basalt.v1");
}

/// Encoded `FileDescriptorSet` of `basalt.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/basalt_v1_descriptor.bin"));

/// The `.proto` sources of `basalt.v1`, as (file name, contents).
pub const PROTO_SOURCES: &[(&str, &str)] = &[
    (
        "basalt/v1/common.proto",
        include_str!("../basalt/v1/common.proto"),
    ),
    (
        "basalt/v1/query.proto",
        include_str!("../basalt/v1/query.proto"),
    ),
    (
        "basalt/v1/ingest.proto",
        include_str!("../basalt/v1/ingest.proto"),
    ),
    (
        "basalt/v1/admin.proto",
        include_str!("../basalt/v1/admin.proto"),
    ),
];
