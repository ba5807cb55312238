//! The gRPC API (`basalt.v1`): query, ingest and admin services over one engine handle, with
//! standard gRPC health checking and server reflection.

pub mod admin;
pub mod convert;
pub mod ingest;
pub mod query;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use basalt_engine::engine::Engine;
use basalt_proto::v1::admin_service_server::AdminServiceServer;
use basalt_proto::v1::ingest_service_server::IngestServiceServer;
use basalt_proto::v1::query_service_server::QueryServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// Largest gRPC message accepted or sent (bytes).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Serve the gRPC API on `listener` until `shutdown` resolves; in-flight calls then finish.
pub async fn serve(
    engine: Arc<Engine>,
    started: Instant,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<QueryServiceServer<query::QueryApi>>()
        .await;
    health
        .set_serving::<AdminServiceServer<admin::AdminApi>>()
        .await;
    health
        .set_serving::<IngestServiceServer<ingest::IngestApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(basalt_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the gRPC reflection service")?;
    let query = QueryServiceServer::new(query::QueryApi::new(engine.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // A push message takes a share of the memory budget, as an HTTP ingest body does.
    let ingest_limit = crate::http::ingest::body_limit(&engine, MAX_MESSAGE_BYTES);
    let ingest = IngestServiceServer::new(ingest::IngestApi::new(engine.clone()))
        .max_decoding_message_size(ingest_limit);
    let admin = AdminServiceServer::new(admin::AdminApi::new(engine.clone(), started))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(query)
        .add_service(ingest)
        .add_service(admin)
        // Accepted connections get TCP_NODELAY, as tonic's own listener would set: without it
        // small responses wait for the client's delayed ACK (~40 ms per push on loopback).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .context("gRPC server")
}
