//! Reading the checked example blocks of the project's docs: a block is checked when the line
//! before its fence is `<!-- check: NAME -->`. Shared by `protocol/tests/docs.rs` and
//! `engine/tests/docs.rs` (included there with `#[path]`), so both read the docs one way.

use std::collections::BTreeMap;

/// The checked blocks of `doc` whose names start with `prefix`: name → text, each line
/// ending with `\n`.
pub fn checked_blocks(doc: &str, prefix: &str) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- check: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "marker {name:?} is not followed by a fence"
        );
        let mut text = String::new();
        for line in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            text.push_str(line);
            text.push('\n');
        }
        if name.starts_with(prefix) {
            let old = blocks.insert(name.to_owned(), text);
            assert!(old.is_none(), "two blocks named {name:?}");
        }
    }
    blocks
}
