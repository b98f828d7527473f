//! The `lab-serve` binary's command line.

use std::process::Command;

fn lab_serve(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lab-serve")).args(args).output().unwrap();
    assert!(output.stdout.is_empty());
    (output.status.code(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn unknown_model_is_a_one_line_error() {
    let (code, stderr) = lab_serve(&["fork"]);
    assert_eq!(code, Some(2));
    let names = lab_server::model_names().join(", ");
    assert!(names.starts_with("process, thread, coroutine, coroutine-mt, select, poll, epoll, epoll-et, io-uring"));
    assert_eq!(stderr, format!("lab-serve: unknown model 'fork'; valid models are {names}\n"));
}

#[test]
fn no_model_is_a_usage_error() {
    let (code, stderr) = lab_serve(&[]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("usage: lab-serve MODEL (one of: process, thread,"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}
