//! Writes one benchmark's section into BENCHMARKS.md, between markers, leaving the other sections as they are.

use std::path::Path;

use anyhow::Context;

const HEADER: &str = "# Benchmarks\n\nFigures measured by `rkube bench ...` on the machine named in each section. \
Each section is rewritten by its own benchmark; the others are left alone.\n";

/// Replaces (or appends) the section `name` of the Markdown file at `path` with `body`.
pub fn write_section(path: &Path, name: &str, body: &str) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let updated = replace_section(&existing, name, body);
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    match (doc.find(&begin), doc.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{section}{}", &doc[..b], &doc[e + end.len()..]),
        _ => format!("{}\n{section}\n", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place_and_others_kept() {
        let doc = replace_section(HEADER, "a", "first");
        let doc = replace_section(&doc, "b", "second");
        let doc = replace_section(&doc, "a", "third");
        assert!(doc.contains("third") && doc.contains("second") && !doc.contains("first"));
        assert!(doc.find("third") < doc.find("second"), "a stays before b");
        assert_eq!(doc.matches("bench:a:begin").count(), 1);
    }
}
