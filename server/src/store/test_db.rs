//! Fresh, empty databases for the store's contract tests: every test named in
//! [`contract!`] runs once on SQLite (a file in a temporary directory) and once on
//! PostgreSQL (a schema of its own in the database `CAMPUSWATCH_TEST_DATABASE_URL`
//! names; `.ci/run` sets it to the machine's PostgreSQL). Without that variable the
//! PostgreSQL half says so on stderr and does nothing; with it, a database that cannot be
//! reached fails the test.

use super::Store;

/// The variable that names the PostgreSQL database the contract tests use.
pub const DATABASE_URL_VAR: &str = "CAMPUSWATCH_TEST_DATABASE_URL";

/// A database for one test; dropped with it (the directory, or the schema).
pub struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// (admin URL, schema) to drop at the end.
    schema: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        TestDb {
            url: format!("sqlite://{}/cw.db", dir.path().display()),
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A new schema in the test PostgreSQL database, or `None` when the variable is not
    /// set.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(admin) = std::env::var(DATABASE_URL_VAR) else {
            eprintln!(
                "{DATABASE_URL_VAR} is not set: the PostgreSQL half of this test did not run"
            );
            return None;
        };
        let schema = format!("cw_test_{}_{}", std::process::id(), rand::random::<u32>());
        let mut conn = connect(&admin).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating schema {schema} in {admin}: {e}"));
        let sep = if admin.contains('?') { '&' } else { '?' };
        Some(TestDb {
            url: format!("{admin}{sep}options[search_path]={schema}"),
            _dir: None,
            schema: Some((admin, schema)),
        })
    }

    /// Opens the store (again: a second open is a server restart).
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.url))
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("{DATABASE_URL_VAR}={url} is set but PostgreSQL cannot be reached: {e}")
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, schema)) = self.schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime: the schema goes on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = connect(&admin).await;
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&mut conn)
                    .await;
            });
        })
        .join();
    }
}

/// Every value of the first column of `sql`'s rows, as text (for looking into tables).
pub async fn texts(store: &Store, sql: &str) -> Vec<String> {
    with_db!(store.pool(), |p| sqlx::query_scalar(sql)
        .fetch_all(p)
        .await
        .expect(sql))
}

/// Runs each named test on both databases: `contract!(name, …)` makes the tests
/// `name::sqlite` and `name::postgres` from `async fn name(db: &TestDb)`.
macro_rules! contract {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use $crate::store::test_db::TestDb;

                #[tokio::test]
                async fn sqlite() {
                    super::$name(&TestDb::sqlite()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(db) = TestDb::postgres().await {
                        super::$name(&db).await;
                    }
                }
            }
        )+
    };
}
pub(crate) use contract;
