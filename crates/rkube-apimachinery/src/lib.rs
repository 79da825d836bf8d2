//! What rkube's API server and its components share, with no IO: upstream's `Status` errors,
//! label and field selectors, continue tokens, and the catalogue of served resources.

pub mod catalogue;
pub mod continue_token;
pub mod fields;
pub mod labels;
pub mod status;

pub use status::{ApiError, Cause};
