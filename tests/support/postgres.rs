//! Fresh PostgreSQL databases for tests, on a throwaway server each test binary starts itself.
//!
//! Unless `DATABASE_URL` names a server, the first test that asks for a database starts a
//! PostgreSQL server of its own from the installed binaries (`initdb` and `pg_ctl`, found in
//! `/usr/lib/postgresql/*/bin` or on `PATH`): a data directory in a temporary directory, a free
//! port on 127.0.0.1, the unix socket in the same temporary directory. The tests of the binary
//! share it, each on a fresh database of its own. A watchdog process holds the read end of a
//! pipe whose write end only this process has: when the test binary ends, however it ends, the
//! watchdog stops the server and removes the directory. Nothing is asked of a server someone
//! else runs, and nothing needs to be started by hand.

use std::{
    net::TcpListener,
    os::unix::{fs::MetadataExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    str::FromStr as _,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use sqlx::{
    Connection as _,
    postgres::{PgConnectOptions, PgConnection},
};

/// The PostgreSQL server the tests use: `DATABASE_URL` when set, otherwise this test binary's
/// own throwaway server (started on first use).
pub fn postgres_base_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| own_server().url.clone())
}

/// This test binary's throwaway server, started on first use. Tests that stop and start the
/// server (a database restart under load) use this one even when `DATABASE_URL` is set: they
/// must never restart a server someone else runs.
pub fn own_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start().unwrap_or_else(|why| panic!("{why}")))
}

/// A PostgreSQL server in a temporary directory, stopped and removed when the test binary
/// ends.
pub struct TestServer {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Whether the server runs as the `postgres` user (this process is root, which
    /// PostgreSQL refuses to run as).
    as_postgres_user: bool,
    /// The write end of the watchdog's pipe: never written, closed by the kernel when this
    /// process exits, which is the watchdog's signal to clean up.
    _watchdog: Mutex<(Child, ChildStdin)>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url)
            .finish()
    }
}

const INSTALL: &str = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: \
                       install them with `apt-get install postgresql` (or set DATABASE_URL to a \
                       server where this user may CREATE DATABASE)";

impl TestServer {
    fn start() -> Result<TestServer, String> {
        let bin = find_binaries().ok_or_else(|| INSTALL.to_owned())?;
        let as_postgres_user = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let dir = tempfile::Builder::new()
            .prefix("refund-gateway-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a directory for the test PostgreSQL: {e}"))?
            .keep();
        // Start the watchdog first, so the directory goes away even if the set-up fails.
        let mut watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Ctrl-C on `cargo test` must not skip the clean-up.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the test PostgreSQL's watchdog: {e}"))?;
        let stdin = watchdog.stdin.take().expect("piped stdin");
        if as_postgres_user {
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status();
            if !matches!(chown, Ok(s) if s.success()) {
                return Err(
                    "running as root, the test PostgreSQL must run as the `postgres` user, \
                     and `chown postgres: <temporary directory>` failed: install PostgreSQL \
                     with `apt-get install postgresql` (it creates that user) or run the \
                     tests as another user"
                        .to_owned(),
                );
            }
        }
        let data = dir.join("data");
        let mut server = TestServer {
            url: String::new(),
            bin,
            data,
            dir,
            port: 0,
            as_postgres_user,
            _watchdog: Mutex::new((watchdog, stdin)),
        };
        server.run(
            "initdb",
            &[
                "-D",
                path_str(&server.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        // A free port can be taken between the probe and the server's bind: try again.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.start_server() {
                Ok(()) => {
                    server.url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
                    return Ok(server);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Stops the server (fast shutdown: connections are cut), as a database restart looks
    /// to its clients.
    pub fn stop(&self) {
        if let Err(e) = self.run(
            "pg_ctl",
            &["-D", path_str(&self.data), "-m", "fast", "-w", "stop"],
        ) {
            panic!("{e}");
        }
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&self) {
        if let Err(e) = self.start_server() {
            panic!("{e}");
        }
    }

    fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off \
             -c full_page_writes=off",
            self.port,
            path_str(&self.dir),
        );
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\n{tail}")
        })
    }

    /// Runs one of the server binaries, as the `postgres` user when this process is root.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed ({}): {}{}",
                program.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// Waits for end of file on stdin (this test binary has ended), then stops the server at once
/// and removes its directory. `$1` is the directory.
const WATCHDOG: &str = r#"
trap '' INT TERM HUP
cat >/dev/null
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -QUIT "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -rf "$1"
"#;

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/*/bin`
/// (Debian, Ubuntu), or the one on `PATH`.
fn find_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A database created for one test on the server of [`postgres_base_url`] and dropped (best
/// effort, also when the test panics) when this is dropped.
pub struct TestDatabase {
    /// The server's own database, to create and drop from.
    admin: PgConnectOptions,
    pub name: String,
    /// The test database's URL.
    pub url: String,
}

impl TestDatabase {
    /// A fresh database on the tests' server ([`postgres_base_url`]).
    pub async fn create() -> TestDatabase {
        TestDatabase::create_at(&postgres_base_url()).await
    }

    /// A fresh database on this test binary's own server ([`own_server`]), whatever
    /// `DATABASE_URL` says.
    pub async fn create_on_own_server() -> TestDatabase {
        TestDatabase::create_at(&own_server().url).await
    }

    async fn create_at(base: &str) -> TestDatabase {
        let admin = PgConnectOptions::from_str(base)
            .unwrap_or_else(|e| panic!("DATABASE_URL {base:?} is not a PostgreSQL URL: {e}"));
        let mut conn = admin_connection(&admin).await;
        let name = format!("refund_gateway_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        conn.close().await.ok();
        let mut url = reqwest::Url::parse(base).expect("DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDatabase {
            admin,
            name,
            url: url.to_string(),
        }
    }
}

impl TestDatabase {
    /// Drops the database now, ending every connection to it (`WITH (FORCE)`): the store of a
    /// gateway using it becomes unavailable.
    pub async fn drop_now(&self) {
        let mut conn = admin_connection(&self.admin).await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot drop test database {}: {e}", self.name));
        conn.close().await.ok();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot await and may run while the test's runtime winds down: use a thread
        // with a runtime of its own. FORCE ends connections a failed test left open.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// A connection to the server's own database, or a failure that says what is wrong.
pub async fn admin_connection(admin: &PgConnectOptions) -> PgConnection {
    let where_ = format!(
        "{}:{}/{}",
        admin.get_host(),
        admin.get_port(),
        admin.get_database().unwrap_or("postgres")
    );
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(admin)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("{}", unreachable_server(&where_, &e.to_string())),
        Err(_) => panic!("{}", unreachable_server(&where_, "no answer in 10s")),
    }
}

fn unreachable_server(at: &str, why: &str) -> String {
    format!(
        "no PostgreSQL server answers at {at} ({why}): unset DATABASE_URL to let the tests \
         start their own, or point it at a server where this user may CREATE DATABASE"
    )
}
