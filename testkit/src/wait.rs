//! Waiting on a condition with a deadline instead of sleeping: a test that fails says
//! what it waited for, and one that passes waits no longer than it has to.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`, and returns what it holds; panics after
/// `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `done` until it holds; panics after `timeout` naming `what`. A plain condition
/// is written `async || cond`.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_condition_that_comes_true_is_waited_for() {
        let start = Instant::now();
        let mut looks = 0;
        let got = wait_for("the third look", Duration::from_secs(5), || {
            looks += 1;
            let n = looks;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(got, 3);
        assert!(start.elapsed() >= 2 * POLL);

        let mut n = 0;
        wait_until("two looks", Duration::from_secs(5), async || {
            n += 1;
            n == 2
        })
        .await;
        assert_eq!(n, 2);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for what never comes")]
    async fn a_condition_that_never_holds_fails_naming_it() {
        wait_until("what never comes", Duration::from_millis(50), async || {
            false
        })
        .await;
    }
}
