//! The configuration reference for operators is the README's configuration table: it must name every setting of
//! `wgate-api` and `wgate-worker`, say which of them reads it, and name nothing else. The settings types are the
//! truth; this test fails with what to change in the README when the two drift apart.

use std::collections::{BTreeMap, BTreeSet};

use wgate_service::config::env_name;

/// `WGATE_*` name -> the "used by" cell of its row.
fn readme_table() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let section = readme.split("\n## Configuration").nth(1).expect("README.md has a `## Configuration` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `WGATE_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (names, used_by) = (cells[1], cells.get(3).copied().unwrap_or_default());
        for name in names.split('`').filter(|n| n.starts_with("WGATE_")) {
            rows.insert(name.to_owned(), used_by.to_owned());
        }
    }
    rows
}

fn processes(used_by: &str) -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    for word in used_by.split([',', ' ']).filter(|w| !w.is_empty()) {
        match word {
            "api" => _ = set.insert("api"),
            "worker" => _ = set.insert("worker"),
            "all" => set.extend(["api", "worker"]),
            _ => {}
        }
    }
    set
}

#[test]
fn the_readme_configuration_table_names_every_setting_with_the_processes_that_read_it() {
    let mut read_by: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let api = wgate_api_proxy::ApiSettings::setting_names();
    let worker = wgate_worker::Settings::setting_names();
    assert!(
        api.contains(&"redis_url") && worker.contains(&"upstream_url") && api.contains(&"log"),
        "a settings type lists no names for its shared parts: include them in its setting_names()"
    );
    for (process, names) in [("api", api), ("worker", worker)] {
        for name in names {
            read_by.entry(env_name(name)).or_default().insert(process);
        }
    }
    let table = readme_table();

    let mut problems = Vec::new();
    for (var, processes_reading) in &read_by {
        let readers = processes_reading.iter().copied().collect::<Vec<_>>().join(", ");
        match table.get(var) {
            None => problems.push(format!(
                "{var} (read by {readers}) has no row in README.md's configuration table: add one with its default, \
                 `{readers}` as \"used by\", and what it means"
            )),
            Some(used_by) if &processes(used_by) != processes_reading => problems.push(format!(
                "README.md says {var} is used by `{used_by}`, but it is read by {readers}: correct the row"
            )),
            Some(_) => {}
        }
    }
    for var in table.keys().filter(|v| !read_by.contains_key(*v)) {
        problems.push(format!(
            "README.md's configuration table lists {var}, which neither wgate-api nor wgate-worker reads: remove \
             the row, or add the setting"
        ));
    }
    assert!(problems.is_empty(), "the configuration reference drifted from the settings:\n- {}", problems.join("\n- "));
}
