//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod not_built;
pub(crate) mod server;
pub(crate) mod sim;
