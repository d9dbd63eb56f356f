//! Processes creating the same channel at the same instant (and, with
//! `create_parents`, its folder): exactly one succeeds, the others get
//! `AlreadyExists`, and no temporary file is left.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kekbit_std::ShmReader;
use kekbit_tests::scratch_dir;

const ROUNDS: usize = 10;
const CREATORS: usize = 6;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kekbit-helper"))
}

#[test]
#[cfg_attr(miri, ignore)]
fn exactly_one_creator_wins() {
    let dir = scratch_dir("racing-creators");
    for round in 0..ROUNDS {
        let path = dir.join(format!("round-{round}/contested.kekbit"));
        // In odd rounds the creators race to make the folder as well.
        let parents = round % 2 == 1;
        if !parents {
            std::fs::create_dir(path.parent().unwrap()).unwrap();
        }
        // Every creator spins until the same instant, then creates.
        let start = SystemTime::now() + Duration::from_millis(300);
        let start = start
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_string();
        let creators: Vec<_> = (0..CREATORS)
            .map(|_| {
                helper()
                    .args(["create", path.to_str().unwrap(), &start])
                    .args(parents.then_some("parents"))
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn a creator")
            })
            .collect();
        let mut winners = Vec::new();
        for creator in creators {
            let out = creator.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: creator failed: {out:?}"
            );
            let line = String::from_utf8(out.stdout).unwrap();
            match line.trim().split_once(' ') {
                Some(("created", pid)) => winners.push(pid.parse::<u32>().unwrap()),
                None if line.trim() == "exists" => {}
                _ => panic!("round {round}: unexpected output {line:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");

        // The channel holds the winner's record, and nothing else is left.
        let channel = ShmReader::open(&path).unwrap();
        let mut reader = channel.reader().unwrap();
        let record = reader.try_read().unwrap().unwrap();
        assert_eq!(record, winners[0].to_le_bytes());
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, ["contested.kekbit"], "round {round}: leftovers");
        if parents {
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o700, "round {round}: the folder made");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
