//! One module per subcommand.

pub(crate) mod agent;
pub(crate) mod bench;
pub(crate) mod cluster;
pub(crate) mod doctor;
pub(crate) mod images;
pub(crate) mod netargs;
pub(crate) mod server;
pub(crate) mod serviceargs;
pub(crate) mod sim;
