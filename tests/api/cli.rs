//! The real binary: exit codes, one-line errors, and the tenant commands.

use std::io::Write;

use crate::helpers::{agenthq, agenthq_with_env, assert_fails_with, stderr, stdout};

#[test]
fn invalid_reserved_and_duplicate_slugs_are_rejected_with_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "create", "Acme"]),
        "invalid tenant slug",
    );
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "create", "1acme"]),
        "start with a lowercase letter",
    );
    assert_fails_with(&agenthq(data.path(), &["tenant", "create", "a"]), "2 to 63");
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "create", "www"]),
        "reserved",
    );
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "create", "api"]),
        "reserved",
    );

    assert!(
        agenthq(data.path(), &["tenant", "create", "acme"])
            .status
            .success()
    );
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "create", "acme"]),
        "already exists",
    );
}

#[test]
fn the_tenant_lifecycle_works_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = agenthq(data.path(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(
        run(&[
            "tenant", "create", "acme", "--name", "Acme Inc", "--plan", "team"
        ])
        .contains("created tenant acme")
    );
    let list: serde_json::Value =
        serde_json::from_str(&run(&["tenant", "list", "--json"])).unwrap();
    assert_eq!(list[0]["slug"], "acme");
    assert_eq!(list[0]["name"], "Acme Inc");
    assert_eq!(list[0]["plan"], "team");
    assert_eq!(list[0]["status"], "active");

    run(&["tenant", "suspend", "acme"]);
    assert!(run(&["tenant", "list"]).contains("suspended"));
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "suspend", "acme"]),
        "already suspended",
    );
    run(&["tenant", "resume", "acme"]);
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "purge", "acme"]),
        "delete it first",
    );
    run(&["tenant", "delete", "acme"]);
    run(&["tenant", "resume", "acme"]); // a soft delete is undone by resume
    run(&["tenant", "delete", "acme"]);
    run(&["tenant", "purge", "acme"]);
    assert!(run(&["tenant", "list"]).contains("no tenants"));
    assert_fails_with(
        &agenthq(data.path(), &["tenant", "suspend", "acme"]),
        "no tenant with slug 'acme'",
    );
}

#[test]
fn an_unknown_plan_is_rejected() {
    let data = tempfile::tempdir().unwrap();
    let out = agenthq(data.path(), &["tenant", "create", "acme", "--plan", "gold"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("gold"), "{}", stderr(&out));
}

#[test]
fn serve_refuses_an_unwritable_data_dir_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = agenthq(&file.join("data"), &["serve", "--listen", "127.0.0.1:0"]);
    assert_fails_with(&out, "data dir is not usable");
}

#[test]
fn serve_refuses_a_bad_listen_address_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    let out = agenthq(data.path(), &["serve", "--listen", "not-an-address"]);
    assert_fails_with(&out, "invalid listen address");
}

#[test]
fn serve_refuses_an_unknown_config_key_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    let mut config = tempfile::NamedTempFile::new().unwrap();
    writeln!(config, "listen = \"127.0.0.1:0\"\nlisten_addr = \"x\"").unwrap();
    let out = agenthq(
        data.path(),
        &["serve", "--config", config.path().to_str().unwrap()],
    );
    assert_fails_with(&out, "listen_addr");
}

#[test]
fn flags_beat_environment_which_beats_the_config_file() {
    let data = tempfile::tempdir().unwrap();
    let mut config = tempfile::NamedTempFile::new().unwrap();
    writeln!(config, "listen = \"file-value\"").unwrap();
    let path = config.path().to_str().unwrap().to_owned();
    // The file's bad value is reported when nothing overrides it…
    assert_fails_with(
        &agenthq(data.path(), &["serve", "--config", &path]),
        "file-value",
    );
    // …the environment overrides the file…
    let out = agenthq_with_env(
        data.path(),
        &["serve", "--config", &path],
        &[("AGENTHQ_LISTEN", "env-value")],
    );
    assert_fails_with(&out, "env-value");
    // …and a flag overrides the environment.
    let out = agenthq_with_env(
        data.path(),
        &["serve", "--config", &path, "--listen", "flag-value"],
        &[("AGENTHQ_LISTEN", "env-value")],
    );
    assert_fails_with(&out, "flag-value");
}

#[test]
fn the_postgres_backend_is_reported_as_unavailable_not_ignored() {
    let data = tempfile::tempdir().unwrap();
    let out = agenthq_with_env(
        data.path(),
        &["tenant", "list"],
        &[(
            "AGENTHQ_DATABASE_URL",
            "postgres://user:hunter2@localhost/agenthq",
        )],
    );
    assert_fails_with(&out, "PostgreSQL");
    assert!(!stderr(&out).contains("hunter2"), "secrets never printed");
}

#[test]
fn version_prints_the_version() {
    let data = tempfile::tempdir().unwrap();
    let out = agenthq(data.path(), &["version"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("agenthq {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn migrate_brings_every_tenant_up_to_date_and_reports_it() {
    let data = tempfile::tempdir().unwrap();
    for slug in ["acme", "globex", "initech"] {
        assert!(
            agenthq(data.path(), &["tenant", "create", slug])
                .status
                .success()
        );
    }
    assert!(
        agenthq(data.path(), &["tenant", "delete", "initech"])
            .status
            .success()
    );
    let out = agenthq(data.path(), &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 tenants"), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 failed"), "{}", stdout(&out));
}

#[test]
fn migrate_reports_a_damaged_tenant_and_exits_non_zero() {
    let data = tempfile::tempdir().unwrap();
    for slug in ["acme", "globex"] {
        assert!(
            agenthq(data.path(), &["tenant", "create", slug])
                .status
                .success()
        );
    }
    let list: serde_json::Value = serde_json::from_str(&stdout(&agenthq(
        data.path(),
        &["tenant", "list", "--json"],
    )))
    .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    std::fs::write(
        data.path().join("tenants").join(format!("{id}.db")),
        b"garbage",
    )
    .unwrap();
    let out = agenthq(data.path(), &["migrate"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("1 failed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("acme"), "{}", stderr(&out));
}

/// The scheduling policy (field 41 of `/proc/PID/task/TID/stat`) of each thread of `pid`
/// (a thread that ends while they are read is left out).
fn thread_policies(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .map(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces;
            // the first of them is field 3.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split(' ').nth(41 - 3).unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn serve_logs_json_lines_and_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agenthq"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("AGENTHQ_DATA_DIR", data.path())
        .env_remove("AGENTHQ_CPU_SCHEDULING")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it answers (poll, no fixed sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Every thread runs under SCHED_BATCH (`http.cpu_scheduling`'s default), unless this
    // test runs with a niceness, which the server then keeps its scheduling for.
    if rustix::process::getpriority_process(None).unwrap() == 0 {
        let policies = thread_policies(child.id());
        assert!(policies.len() > 2, "{policies:?}");
        assert!(policies.iter().all(|&p| p == 3), "{policies:?}");
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "exit status {status}: {err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "SIGTERM received"),
        "{err}"
    );
    assert!(lines.iter().any(|l| l["message"] == "stopped"), "{err}");
}

#[tokio::test]
async fn demo_seeds_an_organisation_and_prints_a_working_token() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agenthq"))
        .args(["demo", "--listen", "127.0.0.1:0", "--log", "warn"])
        .env("AGENTHQ_DATA_DIR", data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The demo prints its address, then the token line, then the curl line (read as they
    // come: no fixed sleep). The reader keeps draining stderr afterwards: a closed pipe would
    // make the server's next log line fail.
    let stderr = child.stderr.take().unwrap();
    let (found, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut address, mut token) = (None, None);
        let mut sent = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("http://") {
                let url = &line[at..];
                if let Some(end) = url.find("/api") {
                    address.get_or_insert(url[..end].to_owned());
                }
            }
            if let Some(t) = line.split_whitespace().find(|w| w.starts_with("ahq_")) {
                token = Some(t.trim_matches('\'').to_owned());
            }
            if !sent && address.is_some() && token.is_some() {
                let _ = found.send((address.clone().unwrap(), token.clone().unwrap()));
                sent = true;
            }
        }
    });
    let (address, token) = tokio::task::spawn_blocking(move || {
        seen.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the demo printed its address and token")
    })
    .await
    .unwrap();

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        let request = client.get(format!("{address}{path}")).bearer_auth(&token);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let org = get("/api/org").await;
    assert_eq!(org["roots"][0]["name"], "ceo", "{org}");
    assert_eq!(org["roots"][0]["reports"].as_array().map(Vec::len), Some(2));
    // The simulated runtime works the seeded tasks: the board moves by itself. The IC's task
    // ("Fix the slow dashboard query", 1.5 s of think time) is done first.
    let seeded = |board: &serde_json::Value| {
        ["backlog", "in_progress", "review", "done"]
            .iter()
            .map(|c| board[c]["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let board = get("/api/tasks/board").await;
    assert!(seeded(&board) >= 4, "{board}");
    let started = std::time::Instant::now();
    loop {
        let board = get("/api/tasks/board").await;
        if board["done"]["count"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "nothing got done: {board}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
