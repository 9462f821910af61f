//! Generated protobuf messages and gRPC services of package `palaver.v1`.
//!
//! The `.proto` sources live in `proto/palaver/v1/` at the top of the
//! workspace; they are the contract with gRPC clients, audit tooling and
//! analytics consumers. This crate only compiles them: conversions to and
//! from domain types live with the domain and the API layers.

#![allow(missing_debug_implementations, clippy::all)]

/// Messages and services of `palaver.v1`.
pub mod v1 {
    tonic::include_proto!("palaver.v1");
}

/// Encoded `FileDescriptorSet` of every palaver proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("palaver_descriptor");

pub use prost;
pub use prost_types;
