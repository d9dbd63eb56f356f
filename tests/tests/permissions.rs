//! New channel files are `0600` unless the caller asks for more, exactly,
//! whatever the umask; readers map them read-only and need only read access.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use kekbit_tests::scratch_dir;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kekbit-helper"))
}

fn run(args: &[&str]) -> String {
    let out = helper().args(args).output().expect("run the helper");
    assert!(out.status.success(), "helper {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
#[cfg_attr(miri, ignore)]
fn new_files_are_private_by_default_and_exact_when_chosen() {
    let dir = scratch_dir("permissions");
    let default = dir.join("default.kekbit");
    run(&[
        "write",
        default.to_str().unwrap(),
        "1",
        "1",
        "65536",
        "0",
        "0",
    ]);
    assert_eq!(mode_of(&default), 0o600);

    // The umask must not narrow a chosen mode: the helper runs under a
    // strict one, whatever this environment's is (0 would prove nothing).
    for mode in ["644", "640", "666", "400"] {
        let path = dir.join(format!("mode-{mode}.kekbit"));
        let out = Command::new("sh")
            .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_kekbit-helper"))
            .args(["create-mode", path.to_str().unwrap(), mode])
            .output()
            .expect("run the helper under umask 077");
        assert!(out.status.success(), "mode {mode}: {out:?}");
        assert_eq!(
            mode_of(&path),
            u32::from_str_radix(mode, 8).unwrap(),
            "mode {mode}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_reader_maps_the_channel_read_only() {
    let dir = scratch_dir("read-only-map");
    let path = dir.join("channel.kekbit");
    run(&[
        "write",
        path.to_str().unwrap(),
        "10",
        "3",
        "65536",
        "0",
        "0",
    ]);
    // Shared and readable, never writable.
    assert_eq!(run(&["maps", path.to_str().unwrap()]), "r--s");

    // A file the reader may not write is still readable as a channel.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(run(&["open", path.to_str().unwrap()]), "ok 10 end");
    std::fs::remove_dir_all(&dir).unwrap();
}
