//! The backends under test: a fresh SQLite file, or a fresh PostgreSQL database of its own,
//! each as a [`Backend`] that can be opened, closed and opened again.

use futures::{FutureExt as _, future::BoxFuture};

use crate::fixtures::*;

pub(crate) type Store = Arc<dyn RefundStore>;

/// One database under test that can be opened, closed (as a process exit would) and opened
/// again.
pub(crate) struct Backend {
    open: Box<dyn Fn() -> BoxFuture<'static, Store> + Send + Sync>,
    close: Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>,
    /// What keeps the database alive until the test ends (a temporary directory, a
    /// database dropped when this is dropped).
    _database: Box<dyn Send + Sync>,
}

impl Backend {
    pub(crate) async fn open(&self) -> Store {
        (self.open)().await
    }

    /// Closes every store `open` returned so far.
    pub(crate) async fn close(&self) {
        (self.close)().await
    }
}

pub(crate) fn sqlite_config(dir: &TempDir) -> StoreConfig {
    StoreConfig {
        url: format!("sqlite://{}", dir.path().join("store.db").display()),
        max_connections: 4,
        busy_timeout_ms: 5_000,
        ..StoreConfig::default()
    }
}

/// A fresh SQLite file in a temporary directory.
pub(crate) async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = sqlite_config(&dir);
    let opened: Arc<Mutex<Vec<SqliteStore>>> = Arc::default();
    let open = {
        let opened = opened.clone();
        move || {
            let (cfg, opened) = (cfg.clone(), opened.clone());
            async move {
                let store = SqliteStore::connect(&cfg).await.expect("open sqlite store");
                opened.lock().unwrap().push(store.clone());
                Arc::new(store) as Store
            }
            .boxed()
        }
    };
    let close = move || {
        let stores = std::mem::take(&mut *opened.lock().unwrap());
        async move {
            for store in stores {
                store.close().await;
            }
        }
        .boxed()
    };
    Backend {
        open: Box::new(open),
        close: Box::new(close),
        _database: Box::new(dir),
    }
}

/// A fresh PostgreSQL database of its own, dropped when the test ends.
pub(crate) async fn postgres() -> Backend {
    let database = TestDatabase::create().await;
    let cfg = postgres_config(&database.url);
    let opened: Arc<Mutex<Vec<PostgresStore>>> = Arc::default();
    let open = {
        let opened = opened.clone();
        move || {
            let (cfg, opened) = (cfg.clone(), opened.clone());
            async move {
                let store = PostgresStore::connect(&cfg)
                    .await
                    .expect("open postgres store");
                opened.lock().unwrap().push(store.clone());
                Arc::new(store) as Store
            }
            .boxed()
        }
    };
    let close = move || {
        let stores = std::mem::take(&mut *opened.lock().unwrap());
        async move {
            for store in stores {
                store.close().await;
            }
        }
        .boxed()
    };
    Backend {
        open: Box::new(open),
        close: Box::new(close),
        _database: Box::new(database),
    }
}

pub(crate) fn postgres_config(url: &str) -> StoreConfig {
    StoreConfig {
        url: url.to_owned(),
        max_connections: 8,
        ..StoreConfig::default()
    }
}
