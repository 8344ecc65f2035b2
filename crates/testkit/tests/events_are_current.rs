//! `events/` holds exactly what the generator makes; `UPDATE_EVENTS=1` rewrites it.

use llmxt_testkit::{repo_root, sample_events};

#[test]
fn events_directory_matches_the_generator() {
    let dir = repo_root().join("events");
    let update = std::env::var_os("UPDATE_EVENTS").is_some();
    for (name, event) in sample_events() {
        let expected = serde_json::to_string_pretty(&event).expect("json") + "\n";
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).expect("mkdir events");
            std::fs::write(&path, &expected).expect("write event");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed, expected,
            "{name} is out of date: run UPDATE_EVENTS=1 cargo test -p llmxt-testkit"
        );
    }
}
