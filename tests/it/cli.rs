//! The built binary run as a user runs it: exit codes, stdout and stderr.

use std::process::{Command, Output};

pub(crate) fn zigbee_otad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zigbee-otad"))
        .args(args)
        .output()
        .expect("run zigbee-otad")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/zigbee-otad.toml");
    let out = zigbee_otad(&["check-config", "--config", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OK"));
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("zigbee-otad-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[coordinator]\nport = \"/dev/x\"\n\n[server]\nmax_blok_size = 40\n",
    )
    .unwrap();
    let out = zigbee_otad(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("max_blok_size"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = zigbee_otad(&["check-config", "--config", "/nonexistent/zigbee-otad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/zigbee-otad.toml: cannot read"));
}
