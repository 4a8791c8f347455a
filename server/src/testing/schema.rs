//! A PostgreSQL schema of its own for one test, in the database
//! `CAMPUSWATCH_TEST_DATABASE_URL` names, dropped with it. Used by the store's contract
//! tests (`store::test_db`), by the server's integration tests and by the benchmarks
//! that run a server on PostgreSQL (in the database they are given).

use sqlx::Connection;

/// The variable that names the PostgreSQL database tests use.
pub const DATABASE_URL_VAR: &str = "CAMPUSWATCH_TEST_DATABASE_URL";

pub struct TestSchema {
    admin: String,
    name: String,
    /// Left in the database when dropped (see [`TestSchema::keep`]).
    kept: bool,
}

impl TestSchema {
    /// A new schema named from `prefix`, or `None` when the variable is not set (said on
    /// stderr, naming `what` did not run). Set but unreachable: panics.
    pub async fn new(prefix: &str, what: &str) -> Option<TestSchema> {
        let Ok(admin) = std::env::var(DATABASE_URL_VAR) else {
            eprintln!("{DATABASE_URL_VAR} is not set: {what} did not run");
            return None;
        };
        Some(
            TestSchema::create(&admin, prefix)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "{DATABASE_URL_VAR}={admin} is set but a schema cannot be made there: {e}"
                    )
                }),
        )
    }

    /// A new schema named from `prefix` in the database `admin` names.
    pub async fn create(admin: &str, prefix: &str) -> Result<TestSchema, sqlx::Error> {
        let name = format!("{prefix}_{}_{}", std::process::id(), rand::random::<u32>());
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await?;
        Ok(TestSchema {
            admin: admin.into(),
            name,
            kept: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Leaves the schema in the database when this is dropped (to look at it after a
    /// benchmark).
    pub fn keep(&mut self) {
        self.kept = true;
    }

    /// The database URL with this schema first on the search path.
    pub fn url(&self) -> String {
        let sep = if self.admin.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.admin, self.name)
    }
}

pub async fn connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("{DATABASE_URL_VAR}={url} is set but PostgreSQL cannot be reached: {e}")
    })
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the schema goes on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = connect(&admin).await;
                let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
                    .execute(&mut conn)
                    .await;
            });
        })
        .join();
    }
}
