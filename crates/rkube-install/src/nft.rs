//! The nftables proxy's table (`ip kube-proxy`): everything it programs lives in it, so deleting the table
//! removes it all.

use crate::Result;

/// Deletes the proxy's table if it exists; returns its name when it was deleted. No `nft` binary means the
/// nftables proxy never ran here.
pub fn delete_table() -> Result<Option<String>> {
    let table = rkube_proxy::nftables::TABLE;
    let family_name: Vec<&str> = table.split(' ').collect();
    let mut list = vec!["list", "table"];
    list.extend(&family_name);
    if crate::run("nft", &list, None).is_err() {
        return Ok(None);
    }
    let mut del = vec!["delete", "table"];
    del.extend(&family_name);
    crate::run("nft", &del, None)?;
    Ok(Some(table.to_owned()))
}
