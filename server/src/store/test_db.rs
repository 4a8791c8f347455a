//! Fresh, empty databases for the store's contract tests: every test named in
//! [`contract!`] runs once on SQLite (a file in a temporary directory) and once on
//! PostgreSQL (a schema of its own in the database `CAMPUSWATCH_TEST_DATABASE_URL`
//! names; `.ci/run` sets it to the machine's PostgreSQL). Without that variable the
//! PostgreSQL half says so on stderr and does nothing; with it, a database that cannot be
//! reached fails the test.

use super::Store;
use crate::testing::TestSchema;

/// A database for one test; dropped with it (the directory, or the schema).
pub struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<TestSchema>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        TestDb {
            url: format!("sqlite://{}/cw.db", dir.path().display()),
            _dir: Some(dir),
            _schema: None,
        }
    }

    /// A new schema in the test PostgreSQL database, or `None` when the variable is not
    /// set.
    pub async fn postgres() -> Option<TestDb> {
        let schema = TestSchema::new("cw_test", "the PostgreSQL half of this test").await?;
        Some(TestDb {
            url: schema.url(),
            _dir: None,
            _schema: Some(schema),
        })
    }

    /// Opens the store (again: a second open is a server restart).
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.url))
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
