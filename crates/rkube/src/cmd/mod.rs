//! One module per subcommand.

pub(crate) mod agent;
pub(crate) mod backup;
pub(crate) mod bench;
pub(crate) mod cluster;
pub(crate) mod component;
pub(crate) mod controller_manager;
pub(crate) mod controllerargs;
pub(crate) mod doctor;
pub(crate) mod images;
pub(crate) mod install;
pub(crate) mod netargs;
pub(crate) mod scheduler;
pub(crate) mod server;
pub(crate) mod serviceargs;
pub(crate) mod sim;
pub(crate) mod token;
