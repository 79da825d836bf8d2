//! `/etc/rkube/config.yaml`: every flag settable in a file (issue 8). Not built yet: the arguments pass through.

use std::ffi::OsString;

/// The command line with the config file's settings added as flags (flags given on the command line win).
pub(crate) fn args(argv: Vec<OsString>) -> Vec<OsString> {
    argv
}
