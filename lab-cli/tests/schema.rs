//! The JSON schema of the one document every command writes (`docs/schema/document.json`) is
//! generated from the Rust types, checked in, and must accept what iolab really writes.
//!
//! When a type changes, this test fails and says how to write the schema anew:
//! `IOLAB_WRITE_SCHEMA=1 cargo xtask test -p lab-cli --test schema`.

use std::{fs, path::PathBuf};

use lab_report::results::document::Document;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/document.json")
}

fn generated() -> String {
    serde_json::to_string_pretty(&schemars::schema_for!(Document)).unwrap() + "\n"
}

#[test]
fn the_checked_in_schema_is_the_one_the_types_generate() {
    let path = schema_path();
    if std::env::var_os("IOLAB_WRITE_SCHEMA").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, generated()).unwrap();
    }
    let checked_in = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated(),
        "{} is out of date: write it anew with IOLAB_WRITE_SCHEMA=1 cargo xtask test -p lab-cli --test schema",
        path.display()
    );
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&fs::read_to_string(schema_path()).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON schema")
}

fn assert_valid(validator: &jsonschema::Validator, what: &str, doc: &serde_json::Value) {
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not follow the schema: {errors:#?}");
}

#[test]
fn the_rendering_fixture_follows_the_schema() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab-report/tests/fixtures/compare.json");
    let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(fixture).unwrap()).unwrap();
    assert_valid(&validator(), "lab-report/tests/fixtures/compare.json", &doc);
}

#[test]
fn a_real_run_follows_the_schema() {
    let validator = validator();
    let iolab = env!("CARGO_BIN_EXE_iolab");
    let run = std::process::Command::new(iolab)
        .args(["run", "--model", "poll", "-c", "5", "-m", "5", "--format", "json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_valid(&validator, "iolab run --format json", &serde_json::from_slice(&run.stdout).unwrap());
    // A document that is not valid is refused: the schema checks something.
    let mut broken: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    broken["results"][0]["messages_total"] = "many".into();
    assert!(!validator.is_valid(&broken), "a string where a count belongs must be refused");
}
