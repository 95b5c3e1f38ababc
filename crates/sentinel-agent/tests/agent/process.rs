//! Running programs for commands, as real processes: output, environment, limits,
//! timeouts and process groups.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sentinel_agent::process::{Ending, Program, find_program, run};
use sentinel_protocol::command::MAX_OUTPUT_BYTES;
use tokio_util::sync::CancellationToken;

/// `sh -c script` with a minimal environment.
fn shell(script: &str, timeout: Duration) -> Program {
    Program {
        path: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), "/".into()),
        ],
        dir: PathBuf::from("/"),
        timeout,
        output_limit: MAX_OUTPUT_BYTES,
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet), waiting up to 2 s.
async fn gone(pid: &str) -> bool {
    let stat = Path::new("/proc").join(pid.trim()).join("stat");
    for _ in 0..80 {
        match std::fs::read_to_string(&stat) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .unwrap()
                    .trim_start()
                    .starts_with('Z') =>
            {
                return true;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    false
}

#[tokio::test]
async fn output_and_exit_code_are_captured_in_a_minimal_environment() {
    let program = shell(
        "echo out; echo err >&2; env | sort; cat; pwd; exit 3",
        Duration::from_secs(10),
    );
    let finished = run(&program, &CancellationToken::new()).await.unwrap();
    assert_eq!(finished.ending, Ending::Exited(3));
    assert_eq!(finished.stderr, "err\n");
    let lines: Vec<&str> = finished.stdout.lines().collect();
    assert_eq!(lines[0], "out");
    // Only the variables given (sh adds PWD and maybe SHLVL); stdin is empty; cwd is /.
    let env: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .copied()
        .filter(|line| !line.starts_with("PWD=") && !line.starts_with("SHLVL="))
        .collect();
    assert_eq!(env, ["HOME=/", "LANG=C.UTF-8", "PATH=/usr/bin:/bin"]);
    assert_eq!(lines.last(), Some(&"/"));
    assert!(!finished.truncated);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group_including_background_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 1000 & echo $! > {}; echo started; sleep 1000",
        pid_file.display()
    );
    let started = Instant::now();
    let finished = run(
        &shell(&script, Duration::from_secs(1)),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(finished.ending, Ending::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        finished.stdout, "started\n",
        "output before the kill is kept"
    );
    let grandchild = std::fs::read_to_string(&pid_file).unwrap();
    assert!(gone(&grandchild).await, "grandchild {grandchild} survived");
}

#[tokio::test]
async fn background_children_do_not_outlive_a_program_that_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("background.pid");
    let script = format!("sleep 1000 & echo $! > {}; exit 0", pid_file.display());
    let started = Instant::now();
    let finished = run(
        &shell(&script, Duration::from_secs(30)),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(finished.ending, Ending::Exited(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait for the background child's pipe"
    );
    let background = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        gone(&background).await,
        "background child {background} survived"
    );
}

#[tokio::test]
async fn output_over_the_limit_is_cut_and_flagged_and_the_pipes_keep_draining() {
    // 3 MiB on stderr, then 3 MiB on stdout: a child writing more than a pipe holds
    // blocks unless both pipes are read all along, past the limit.
    let script = "head -c 3145728 /dev/zero | tr '\\0' e >&2; \
                  head -c 3145728 /dev/zero | tr '\\0' o; echo done >&2";
    let started = Instant::now();
    let finished = run(
        &shell(script, Duration::from_secs(20)),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.ending,
        Ending::Exited(0),
        "the child never blocked"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(finished.truncated);
    assert_eq!(finished.stdout.len(), MAX_OUTPUT_BYTES);
    assert_eq!(finished.stderr.len(), MAX_OUTPUT_BYTES);
    assert!(finished.stdout.bytes().all(|b| b == b'o'));
    assert!(finished.stderr.bytes().all(|b| b == b'e'));
}

#[tokio::test]
async fn output_is_cut_on_a_character_boundary() {
    let mut program = shell("printf 'ééééé'", Duration::from_secs(10));
    program.output_limit = 5;
    let finished = run(&program, &CancellationToken::new()).await.unwrap();
    assert_eq!(finished.stdout, "éé");
    assert!(finished.truncated);
}

#[tokio::test]
async fn stopping_kills_the_group() {
    let stop = CancellationToken::new();
    let program = shell("sleep 1000", Duration::from_secs(60));
    let stopper = {
        let stop = stop.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop.cancel();
        }
    };
    let (finished, ()) = tokio::join!(run(&program, &stop), stopper);
    assert_eq!(finished.unwrap().ending, Ending::Stopped);
}

#[tokio::test]
async fn a_program_that_cannot_start_is_an_error() {
    let mut program = shell("true", Duration::from_secs(1));
    program.path = PathBuf::from("/nonexistent/sentinel/program");
    assert!(run(&program, &CancellationToken::new()).await.is_err());
}

#[test]
fn programs_are_found_in_the_given_path_only() {
    let path = std::ffi::OsString::from("/nonexistent:/bin:/usr/bin");
    let sh = find_program("sh", &path).unwrap();
    assert!(sh.ends_with("sh") && sh.is_absolute());
    assert_eq!(find_program("sh", "/nonexistent".as_ref()), None);
    assert_eq!(find_program("sentinel-no-such-program", &path), None);
}
