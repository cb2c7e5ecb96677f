//! Fresh PostgreSQL databases for tests.

use std::{str::FromStr as _, time::Duration};

use sqlx::{
    Connection as _,
    postgres::{PgConnectOptions, PgConnection},
};

/// The PostgreSQL server the tests use.
pub fn postgres_base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
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
    pub async fn create() -> TestDatabase {
        let base = postgres_base_url();
        let admin = PgConnectOptions::from_str(&base)
            .unwrap_or_else(|e| panic!("DATABASE_URL {base:?} is not a PostgreSQL URL: {e}"));
        let mut conn = admin_connection(&admin).await;
        let name = format!("refund_gateway_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        conn.close().await.ok();
        let mut url = reqwest::Url::parse(&base).expect("DATABASE_URL is a URL");
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

/// A connection to the server's own database, or a failure that says how to get a server.
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
        "The PostgreSQL store tests need a PostgreSQL server, and none answers at {at} ({why}). \
         Start the local one with `pg_ctlcluster --skip-systemctl-redirect \
         $(ls /etc/postgresql) main start`, or set DATABASE_URL to a server where this user \
         may CREATE DATABASE."
    )
}
