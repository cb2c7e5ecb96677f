//! Protobuf <-> domain conversions: `requests` into the service's inputs (validated, every
//! bad field reported at once), `responses` back into protobuf messages.

mod requests;
mod responses;

pub use requests::*;
pub use responses::*;
