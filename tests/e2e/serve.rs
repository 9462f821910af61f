//! `palaver serve` and the store tools, as an operator uses them.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::harness::palaver;

#[test]
fn serve_starts_on_an_empty_folder_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("palaver-data");
    let mut child = palaver(&data).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = stderr.lines();
    loop {
        assert!(Instant::now() < deadline, "palaver serve did not start in time");
        let line = lines.next().expect("palaver serve exited early").unwrap();
        if line.contains("waiting for SIGINT or SIGTERM") {
            break;
        }
    }
    assert!(data.join("events.db").exists());
    // Read-model commits are not synced while it runs (ADR 0013): on Linux
    // a marker names the OS boot they depend on.
    let marker = data.join("read-models.db-unsynced");
    let linux = std::path::Path::new("/proc/sys/kernel/random/boot_id").exists();
    assert_eq!(marker.exists(), linux);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    // A clean stop syncs the read models: they survive an OS restart.
    assert!(!marker.exists(), "the read models were left unsynced");
    // The lock is released: the tools can open the store now.
    let verify = palaver(&data).args(["store", "verify"]).output().unwrap();
    assert!(verify.status.success());
    let report = String::from_utf8(verify.stdout).unwrap();
    assert!(report.contains("intact"), "{report}");
    assert!(report.contains("events  0"), "{report}");
}

#[test]
fn store_tools_refuse_a_folder_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    for args in [&["store", "verify"][..], &["store", "read"][..]] {
        let output = palaver(&data).args(args).output().unwrap();
        assert!(!output.status.success());
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("no event store at"), "{message}");
    }
    assert!(!data.exists(), "an audit must not create a store");
}

#[test]
fn a_second_server_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("palaver-data");
    let mut first = palaver(&data).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    while !lines
        .next()
        .expect("first server runs")
        .unwrap()
        .contains("event store open")
    {}
    let second = palaver(&data).arg("serve").output().unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("in use by another process"), "{message}");
}
