//! The generated `refunds.v1` protobuf types, server and client, kept in a private module and
//! re-exported whole. Domain code never uses these: conversions live in `grpc::convert`.

mod generated {
    #![allow(
        missing_docs,
        unreachable_pub,
        missing_debug_implementations,
        clippy::all
    )]
    tonic::include_proto!("refunds.v1");
}

pub use generated::*;

/// The encoded descriptor set of `proto/refunds/v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("refunds_v1_descriptor");
