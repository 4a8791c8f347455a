//! Coverage of the whole area from servers that each watch some regions
//! (`mqtt.regions`): a server asks the others (`cluster.peers`) for their own figures
//! (`GET /api/v1/coverage?local=true`) and adds them to its own. Partitions hold disjoint
//! sets of campuses, so the counts add up; rates are computed again from the sums. A
//! partition that does not answer makes the answer an error, never a smaller figure.

use std::time::Duration;

use campuswatch_protocol::SchoolType;
use serde::Deserialize;

use crate::config::ClusterConfig;
use crate::monitor::coverage::{Contribution, CoverageBlock};

/// The other servers, and how to ask them.
#[derive(Clone)]
pub struct Peers {
    urls: Vec<String>,
    token: String,
    client: reqwest::Client,
}

/// What a peer answers, as far as adding it up needs.
#[derive(Debug, Deserialize)]
pub struct PeerCoverage {
    #[serde(flatten)]
    pub totals: CoverageBlock,
    pub school_types: Vec<PeerSchoolType>,
    pub children: Vec<PeerChild>,
}

#[derive(Debug, Deserialize)]
pub struct PeerSchoolType {
    pub school_type: SchoolType,
    #[serde(flatten)]
    pub block: CoverageBlock,
}

#[derive(Debug, Deserialize)]
pub struct PeerChild {
    pub code: String,
    pub name: String,
    pub level: String,
    /// Whether it came with its parent (asked for with `level`).
    #[serde(default, deserialize_with = "present")]
    pub parent: bool,
    #[serde(flatten)]
    pub block: CoverageBlock,
}

impl Peers {
    pub fn new(config: &ClusterConfig) -> Peers {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()
            .unwrap_or_default();
        Peers {
            urls: config
                .peers
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            token: config.token.clone(),
            client,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Every peer's own coverage for `query` (the coverage endpoint's query string,
    /// without `local`), asked at once; the first failure names its peer.
    pub async fn coverage(&self, query: &[(&str, String)]) -> Result<Vec<PeerCoverage>, String> {
        let asks = self.urls.iter().map(|url| async move {
            let mut req = self
                .client
                .get(format!("{url}/api/v1/coverage"))
                .query(query)
                .query(&[("local", "true")]);
            if !self.token.is_empty() {
                req = req.bearer_auth(&self.token);
            }
            let answer = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = answer.status();
            if !status.is_success() {
                return Err(format!("{url} answered {status}"));
            }
            let body = answer.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            serde_json::from_slice::<PeerCoverage>(&body)
                .map_err(|e| format!("{url}: unreadable coverage: {e}"))
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .collect()
    }
}

/// `a` and `b` added up, with the rates computed from the sums.
pub fn add(a: &CoverageBlock, b: &CoverageBlock) -> CoverageBlock {
    let mut sum = Contribution::of(a);
    sum.add(&Contribution::of(b));
    sum.block()
}

/// True when the field is there (whatever it holds).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}
