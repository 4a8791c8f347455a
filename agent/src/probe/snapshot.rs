//! HTTP snapshot probe: GET a camera's JPEG snapshot URL; the video link is up when the
//! answer is a JPEG with a frame of non-zero size (start-of-image, a frame header with
//! width and height, end-of-image). A camera whose web server answers but whose sensor
//! or encoder has stopped fails here where a plain HTTP check would pass.

use std::time::{Duration, Instant};

use campuswatch_protocol::CauseCode;

use super::http::{client_for, request_cause};
use super::{Cause, Probe, ProbeFuture, ProbeResult, ProbeSetupError};

/// Largest snapshot read; a 4K JPEG is well under this.
const MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

pub struct SnapshotProbe {
    url: String,
    timeout: Duration,
    client: reqwest::Client,
}

impl SnapshotProbe {
    pub fn new(
        url: String,
        insecure_tls: bool,
        timeout: Duration,
    ) -> Result<Self, ProbeSetupError> {
        let client = client_for("snapshot", &url, insecure_tls)?;
        Ok(Self {
            url,
            timeout,
            client,
        })
    }

    async fn run(&self) -> ProbeResult {
        let started = Instant::now();
        let fail = |cause: Cause| ProbeResult::fail(started.elapsed(), cause);
        let mut resp = match self
            .client
            .get(&self.url)
            .timeout(self.timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return fail(request_cause(&e, self.timeout)),
        };
        let status = resp.status().as_u16();
        if status == 401 {
            return fail(Cause::new(
                CauseCode::new("http.unauthorized"),
                "HTTP 401 Unauthorized: check the camera's user and password in the snapshot URL",
            ));
        }
        if status != 200 {
            return fail(Cause::new(
                CauseCode::new("http.status")
                    .with("got", status)
                    .with("expected", "200"),
                format!("HTTP status {status} (expected 200 with a JPEG)"),
            ));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_SNAPSHOT_BYTES {
                        return fail(Cause::new(
                            CauseCode::new("snapshot.too_large")
                                .with("mib", MAX_SNAPSHOT_BYTES >> 20),
                            format!(
                                "the snapshot is larger than {} MiB: not a still image",
                                MAX_SNAPSHOT_BYTES >> 20
                            ),
                        ));
                    }
                }
                Ok(None) => break,
                Err(e) => return fail(request_cause(&e, self.timeout)),
            }
        }
        match jpeg_size(&body) {
            Ok((width, height)) => {
                let mut r = ProbeResult::ok(started.elapsed());
                r.measurements.insert("http_status".into(), 200.0);
                r.measurements.insert("width".into(), f64::from(width));
                r.measurements.insert("height".into(), f64::from(height));
                r.measurements.insert("bytes".into(), body.len() as f64);
                r
            }
            Err(why) => fail(Cause::new(
                CauseCode::new("snapshot.not_jpeg"),
                format!("the snapshot is not a usable JPEG: {why}"),
            )),
        }
    }
}

/// The frame size of a baseline or progressive JPEG, after checking its structure:
/// SOI first, a SOF header with non-zero width and height, EOI at the end.
pub fn jpeg_size(data: &[u8]) -> Result<(u16, u16), String> {
    if data.is_empty() {
        return Err("empty response".into());
    }
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err("it does not start with a JPEG start-of-image marker".into());
    }
    // Cameras sometimes pad after EOI; look for it near the end.
    let tail = &data[data.len().saturating_sub(64)..];
    if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err("it is truncated (no end-of-image marker)".into());
    }
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return Err(format!("bad marker at byte {i}"));
        }
        let marker = data[i + 1];
        // Fill bytes and stand-alone markers carry no length.
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if len < 2 || i + 2 + len > data.len() {
            return Err(format!("segment at byte {i} runs past the end"));
        }
        let is_sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof {
            if len < 7 {
                return Err("frame header too short".into());
            }
            let height = u16::from_be_bytes([data[i + 5], data[i + 6]]);
            let width = u16::from_be_bytes([data[i + 7], data[i + 8]]);
            if width == 0 || height == 0 {
                return Err(format!("frame of {width}x{height} pixels"));
            }
            return Ok((width, height));
        }
        if marker == 0xDA {
            return Err("image data before any frame header".into());
        }
        i += 2 + len;
    }
    Err("no frame header".into())
}

impl Probe for SnapshotProbe {
    fn kind(&self) -> &'static str {
        "snapshot"
    }

    fn target(&self) -> &str {
        &self.url
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = include_bytes!("../../tests/snapshot-320x240.jpg");

    #[test]
    fn a_real_jpeg_gives_its_frame_size() {
        assert_eq!(jpeg_size(JPEG), Ok((320, 240)));
    }

    #[test]
    fn broken_images_are_refused_with_the_reason() {
        assert!(jpeg_size(b"").unwrap_err().contains("empty"));
        assert!(jpeg_size(b"<html>camera error</html>")
            .unwrap_err()
            .contains("start-of-image"));
        assert!(jpeg_size(&JPEG[..JPEG.len() / 2])
            .unwrap_err()
            .contains("truncated"));
        let mut zero = JPEG.to_vec();
        let sof = zero.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        zero[sof + 5] = 0;
        zero[sof + 6] = 0;
        assert!(jpeg_size(&zero).unwrap_err().contains("320x0 pixels"));
    }

    #[test]
    fn random_bytes_never_panic() {
        for b in crate::mutants::mutants(JPEG, 3, 5_000) {
            if let Ok((w, h)) = jpeg_size(&b) {
                assert!(w > 0 && h > 0);
            }
        }
    }
}
