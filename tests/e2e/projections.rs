//! `palaver projections …` on a data folder, as an auditor uses them.

use std::process::Command;

use crate::harness::palaver;

#[test]
fn status_rebuild_and_replay_work_on_a_fresh_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `store verify` refuses a missing store; create one the way an operator would.
    let status = palaver(&data).args(["projections", "status"]).output().unwrap();
    assert!(!status.status.success(), "no store yet");

    let mut serve = palaver(&data).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !data.join("read-models.db").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not create the read models"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(serve.wait().unwrap().success());

    let status = palaver(&data).args(["projections", "status"]).output().unwrap();
    assert!(status.status.success());
    let text = String::from_utf8(status.stdout).unwrap();
    for name in ["inbox", "timeline", "window", "contacts", "store head"] {
        assert!(text.contains(name), "{text}");
    }
    let rebuild = palaver(&data).args(["projections", "rebuild"]).output().unwrap();
    assert!(
        rebuild.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    let out = dir.path().join("as-of-0.db");
    let replay = palaver(&data)
        .args(["projections", "replay", "--position", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(out.exists());
    // A replay never overwrites.
    let again = palaver(&data)
        .args(["projections", "replay", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
