//! Every README example whose input is in the repository is the command's real output
//! (`scripts/readme_examples.py` refreshes them; this test keeps them from drifting).

use crate::util::*;

/// `(command line, expected output)` of each ```text block that starts with
/// `$ servesim`, one pair per `$` line.
fn examples(readme: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in readme.split("```text\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        if !block.starts_with("$ servesim ") {
            continue;
        }
        let mut current: Option<(String, String)> = None;
        for line in block.lines() {
            if let Some(cmd) = line.strip_prefix("$ servesim ") {
                out.extend(current.take());
                current = Some((cmd.to_owned(), String::new()));
            } else if let Some((_, text)) = current.as_mut() {
                text.push_str(line);
                text.push('\n');
            }
        }
        out.extend(current);
    }
    out
}

#[test]
fn readme_examples_are_real_output() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut checked = 0;
    for (command, expected) in examples(&readme) {
        if command.contains("../shared") {
            continue;
        }
        // `... | head -N`: the first N lines.
        let (args, head) = match command.split_once(" | head -") {
            Some((a, n)) => (a, Some(n.trim().parse::<usize>().unwrap())),
            None => (command.as_str(), None),
        };
        let argv: Vec<&str> = args.split_whitespace().collect();
        let o = servesim_in(&root(), &argv);
        ok(&o);
        let mut got = stdout(&o);
        if let Some(n) = head {
            got = got.lines().take(n).map(|l| format!("{l}\n")).collect();
        }
        assert_eq!(got, expected, "README: servesim {command}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} README examples checked");
}
