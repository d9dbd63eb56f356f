//! New channel files are `0600` unless the caller asks for more, exactly,
//! whatever the umask, and so are the folders made for them; readers map
//! them read-only, need only read access, and map only what nobody but
//! their user (or root) can write.

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

/// Runs the helper under `umask`, whatever this environment's is.
fn run_under_umask(umask: &str, args: &[&str]) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_kekbit-helper"))
        .args(args)
        .output()
        .expect("run the helper under a umask");
    assert!(out.status.success(), "umask {umask}, {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
#[cfg_attr(miri, ignore)]
fn folders_made_for_channels_are_exact_whatever_the_umask() {
    let dir = scratch_dir("folder-modes");
    // A permissive umask must not widen them, a strict one not narrow them.
    for umask in ["000", "077"] {
        for (mode, folder_mode) in [("600", 0o700), ("640", 0o750), ("644", 0o755)] {
            let root = dir.join(format!("root-{umask}-{mode}"));
            let channel = run_under_umask(umask, &["create-in", root.to_str().unwrap(), "7", mode]);
            let channel = std::path::Path::new(&channel);
            assert_eq!(
                mode_of(&root),
                folder_mode,
                "root, umask {umask}, mode {mode}"
            );
            assert_eq!(
                mode_of(channel.parent().unwrap()),
                folder_mode,
                "id folder, umask {umask}, mode {mode}"
            );

            let path = dir.join(format!("parents-{umask}-{mode}/a/b/c.kekbit"));
            run_under_umask(umask, &["create-parents", path.to_str().unwrap(), mode]);
            for made in [
                path.parent().unwrap(),
                &dir.join(format!("parents-{umask}-{mode}")),
            ] {
                assert_eq!(
                    mode_of(made),
                    folder_mode,
                    "{}, umask {umask}",
                    made.display()
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_safe_open_trusts_only_its_own_user_and_root() {
    use std::os::unix::fs::chown;
    use std::os::unix::process::CommandExt;

    use std::os::unix::fs::MetadataExt;

    let dir = scratch_dir("trust");
    // A folder this process made is owned by its effective user.
    if std::fs::metadata(&dir).unwrap().uid() != 0 {
        eprintln!("skipped: needs root, to run the reader as another user");
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let make = |name: &str, owner: u32, mode: u32| {
        let path = dir.join(name);
        run(&["write", path.to_str().unwrap(), "1", "5", "65536", "0", "0"]);
        chown(&path, Some(owner), None).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    // The reader runs as `nobody` (65534).
    let as_nobody = |role: &str, path: &std::path::Path| {
        let out = helper()
            .uid(65534)
            .gid(65534)
            .args([role, path.to_str().unwrap()])
            .output()
            .expect("run the helper as nobody");
        assert!(out.status.success(), "{role} {}: {out:?}", path.display());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let cases = [
        // Root's: only root can write it, and root is trusted.
        (make("root-644.kekbit", 0, 0o644), "ok 1 end"),
        // Its own.
        (make("nobody-600.kekbit", 65534, 0o600), "ok 1 end"),
        // Another user's, even if only that user can write it.
        (make("other-644.kekbit", 65533, 0o644), "error Untrusted: "),
        // Root's, but anyone may write it.
        (make("root-646.kekbit", 0, 0o646), "error Untrusted: "),
    ];
    for (path, expected) in &cases {
        let outcome = as_nobody("open", path);
        assert!(
            outcome.starts_with(expected),
            "{}: expected {expected}, got {outcome}",
            path.display()
        );
        // Opening it as shared is the reader's own call.
        assert_eq!(
            as_nobody("open-shared", path),
            "ok 1 end",
            "{}",
            path.display()
        );
    }
    let other = as_nobody("open", &cases[2].0);
    assert!(
        other.contains("owned by uid 65533, neither this user (uid 65534) nor root"),
        "{other}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
